"""Stable names for the window's controls: an objectName (tests and GUI automation find a control by it) and an
accessible name (what a screen reader says). `docs/gui-names.md` lists them; a test keeps the two in step."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTabBar,
    QWidget,
)

W = TypeVar("W", bound=QWidget)

INTERACTIVE = (QAbstractButton, QAbstractItemView, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit,
               QPlainTextEdit, QTabBar)


def named(widget: W, name: str, accessible: str) -> W:
    """Give `widget` its objectName and accessible name; returns it, for use inline."""
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    return widget


def interactive_widgets(root: QWidget) -> list[QWidget]:
    """Every control a person can operate under `root` (itself included), in creation order."""
    found = root.findChildren(QWidget)
    return [w for w in [root, *found] if isinstance(w, INTERACTIVE)]
