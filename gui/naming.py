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
    QHeaderView,
    QLineEdit,
    QMenu,
    QMenuBar,
    QPlainTextEdit,
    QScrollBar,
    QTabBar,
    QWidget,
)

W = TypeVar("W", bound=QWidget)

INTERACTIVE = (QAbstractButton, QAbstractItemView, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit, QMenu,
               QMenuBar, QPlainTextEdit, QTabBar)
CONTROL = "thawControl"  # a widget property: a control of Thaw's own kind (the freeze timeline), named like the rest


def named(widget: W, name: str, accessible: str) -> W:
    """Give `widget` its objectName and accessible name; returns it, for use inline."""
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    if not isinstance(widget, INTERACTIVE):
        widget.setProperty(CONTROL, True)
    return widget


def _control(w: QWidget, root: QWidget) -> bool:
    """A control of Thaw's own: not a scroll bar or header (part of the view that has them), not one of Qt's
    own ("qt_..."), not a part of another control (a combo's pop-up list, a spin box's text, a tab bar's arrows)."""
    if w.property(CONTROL):
        return True
    if not isinstance(w, INTERACTIVE) or isinstance(w, (QScrollBar, QHeaderView)) or w.objectName().startswith("qt_"):
        return False
    up = w.parentWidget()
    while up is not None and up is not root.parentWidget():
        if isinstance(up, INTERACTIVE) and not isinstance(up, (QMenu, QMenuBar)):  # a menu's submenus are controls
            return False
        up = up.parentWidget()
    return True


def interactive_widgets(root: QWidget) -> list[QWidget]:
    """Every control a person can operate under `root` (itself included), in creation order."""
    return [w for w in [root, *root.findChildren(QWidget)] if _control(w, root)]
