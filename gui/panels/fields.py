"""Input widgets bound to project keys, validated as they are typed.

A `FieldSet` holds one binding per project key. An edit is parsed, checked by any extra rule of the panel,
then handed to ``project.set`` (which checks it again and raises `ProjectError` naming the key). Only an
accepted value reaches the project; a rejected one is marked on the widget (red border, the reason in the
tooltip) and listed by `FieldSet.problems()` until it is fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QWidget

from engine.errors import ProjectError
from engine.project import Project

INVALID_STYLE = "border: 2px solid #d32f2f; border-radius: 3px; background: #fdecea;"

Parse = Callable[[str], Any]
Check = Callable[[Any], "str | None"]


# ---------------------------------------------------------------- parsers: text -> value, ValueError says why


def parse_int(text: str) -> int:
    text = text.strip().replace("_", "")
    if not text:
        raise ValueError("enter a whole number")
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def parse_float(text: str) -> float:
    text = text.strip().replace("_", "")
    if not text:
        raise ValueError("enter a number, e.g. 0.001 or 1e-3")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number (write e.g. 0.001 or 1e-3)") from None


def parse_int_list(text: str) -> list[int]:
    """``"256, 128"`` -> ``[256, 128]``; commas or spaces separate the numbers."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise ValueError("enter one or more sizes, e.g. 256, 128")
    out = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError:
            raise ValueError(f"{p!r} is not a whole number; separate sizes with commas") from None
    return out


def format_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_int_list(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


# ---------------------------------------------------------------- marking


def mark(widget: QWidget, problem: str | None) -> None:
    """Show `problem` on the widget (red border + tooltip), or clear it; `invalid` property for tests/styles."""
    help_text = widget.property("help_text")
    if help_text is None:
        help_text = widget.toolTip()
        widget.setProperty("help_text", help_text)
    widget.setProperty("invalid", problem is not None)
    if not widget.objectName():
        widget.setObjectName(f"field{id(widget):x}")
    # Selected by object name, so the style does not spill into children (a combo's pop-up, radio buttons).
    widget.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
    widget.setStyleSheet(f"#{widget.objectName()} {{ {INVALID_STYLE} }}" if problem else "")
    widget.setToolTip(f"⚠ {problem}" + (f"\n\n{help_text}" if help_text else "") if problem else help_text)


def is_marked(widget: QWidget) -> bool:
    return bool(widget.property("invalid"))


# ---------------------------------------------------------------- bindings


@dataclass
class Binding:
    key: str
    widget: QWidget
    read: Callable[[], Any]          # widget -> value; may raise ValueError
    write: Callable[[Any], None]     # value -> widget, without emitting an edit
    check: Check | None = None       # the panel's own rule, beyond the project's
    problem: str | None = None


class FieldSet(QObject):
    """The bindings of one panel: loads a project into its widgets and commits valid edits back."""

    changed = Signal()                 # after an accepted edit
    problems_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.bindings: dict[str, Binding] = {}
        self.extra_widgets: list[QWidget] = []   # buttons etc. disabled while read-only
        self._loading = False

    # -- binding widgets

    def line(self, key: str, edit: QLineEdit, parse: Parse = str, fmt: Callable[[Any], str] = format_number,
             check: Check | None = None) -> Binding:
        b = Binding(key, edit, lambda: parse(edit.text()), lambda v: edit.setText(fmt(v)), check)
        edit.textEdited.connect(lambda _t: self.commit(key))
        return self._add(b)

    def combo(self, key: str, combo: QComboBox, check: Check | None = None) -> Binding:
        """A combo whose items carry the project values as item data."""

        def write(v: Any) -> None:
            i = combo.findData(v)
            if i < 0:  # a value this machine does not offer (e.g. a project from elsewhere): show it anyway
                combo.addItem(str(v), v)
                i = combo.count() - 1
            combo.setCurrentIndex(i)

        b = Binding(key, combo, lambda: combo.currentData(), write, check)
        combo.activated.connect(lambda _i: self.commit(key))
        return self._add(b)

    def check_box(self, key: str, box: QCheckBox) -> Binding:
        b = Binding(key, box, box.isChecked, box.setChecked)
        box.clicked.connect(lambda _c: self.commit(key))
        return self._add(b)

    def custom(self, key: str, widget: QWidget, read: Callable[[], Any], write: Callable[[Any], None],
               check: Check | None = None) -> Binding:
        """Any other widget: the panel calls `commit(key)` when the person edits it."""
        return self._add(Binding(key, widget, read, write, check))

    def _add(self, b: Binding) -> Binding:
        self.bindings[b.key] = b
        return b

    # -- the contract

    def load(self, project: Project) -> None:
        """Show the project's values; any value that breaks a panel rule is marked at once."""
        self.project = project
        self._loading = True
        try:
            for b in self.bindings.values():
                value = project.get(b.key)
                b.write(value)
                self._set_problem(b, b.check(value) if b.check else None)
        finally:
            self._loading = False
        self.problems_changed.emit()

    def commit(self, key: str) -> bool:
        """Validate the widget's value and put it into the project; returns whether it was accepted."""
        b = self.bindings[key]
        if self._loading or self.project is None:
            return False
        try:
            value = b.read()
            problem = b.check(value) if b.check else None
            if problem is None:
                self.project.set(key, value)
        except ProjectError as exc:
            problem = exc.problem
        except ValueError as exc:
            problem = str(exc)
        self._set_problem(b, problem)
        self.problems_changed.emit()
        if problem is None:
            self.changed.emit()
        return problem is None

    def recheck(self, key: str) -> None:
        """Re-run the panel's rule: something it depends on changed (e.g. the architecture)."""
        b = self.bindings[key]
        if self.project is None:
            return
        if b.problem is not None:  # a rejected value may be acceptable now
            self.commit(key)
            return
        self._set_problem(b, b.check(self.project.get(key)) if b.check else None)
        self.problems_changed.emit()

    def _set_problem(self, b: Binding, problem: str | None) -> None:
        b.problem = problem
        mark(b.widget, problem)

    def set_problem(self, key: str, problem: str | None) -> None:
        """Mark a field from outside the edit path (e.g. a folder scan that failed)."""
        self._set_problem(self.bindings[key], problem)
        self.problems_changed.emit()

    def problems(self) -> list[str]:
        return [f"{b.key}: {b.problem}" for b in self.bindings.values() if b.problem]

    def set_read_only(self, read_only: bool) -> None:
        for b in self.bindings.values():
            if isinstance(b.widget, QLineEdit):
                b.widget.setReadOnly(read_only)
            b.widget.setEnabled(not read_only)
        for w in self.extra_widgets:
            w.setEnabled(not read_only)


def add_items(combo: QComboBox, items: list[tuple[str, Any]]) -> QComboBox:
    for text, value in items:
        combo.addItem(text, value)
    return combo


def help_label(text: str) -> QLabel:
    """A small grey note under a field."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
    return label


def add_row(form: QFormLayout, label: str, widget: QWidget, help_text: str = "") -> QWidget:
    if help_text:
        widget.setToolTip(help_text)
    form.addRow(label, widget)
    return widget


class ProjectPanel(QWidget):
    """Base of the set-up panels: the shared contract with the main window."""

    changed = Signal()            # an accepted edit went into the project
    problems_changed = Signal()   # `problems()` may have changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.fields = FieldSet(self)
        self.fields.changed.connect(self.changed)
        self.fields.problems_changed.connect(self.problems_changed)

    def set_project(self, project: Project) -> None:
        """Show `project` and write every later edit into this same object."""
        self.project = project
        self.fields.load(project)

    def set_read_only(self, read_only: bool) -> None:
        self.fields.set_read_only(read_only)

    def problems(self) -> list[str]:
        return self.fields.problems()
