"""Input widgets bound to project keys, validated as they are typed.

A `FieldSet` holds one binding per project key. An edit is parsed and handed to ``project.set`` (which checks
it against the key's rule and raises `ProjectError` naming the key). Only an accepted value reaches the project;
a refused one stays in the widget, marked (red border, the reason in the tooltip), and is listed by
`FieldSet.typed_problems()` until it is fixed: the window neither runs nor saves while one is. Every other rule
is the engine's: `engine.preflight` says what is wrong with the values the project holds, and `FieldSet.show`
marks each field with what concerns its key. No rule is written here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from engine.errors import ProjectError
from engine.project import Project

INVALID_STYLE = "border: 2px solid #d32f2f; border-radius: 3px; background: #fdecea;"

Parse = Callable[[str], Any]


# ---------------------------------------------------------------- parsers: text -> value, ValueError says why


def _parse(text: str, kind: type, empty: str, bad: str) -> Any:
    text = text.strip().replace("_", "")
    if not text:
        raise ValueError(empty)
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{text!r} {bad}") from None


def parse_int(text: str) -> int:
    return _parse(text, int, "enter a whole number", "is not a whole number")


def parse_float(text: str) -> float:
    return _parse(text, float, "enter a number, e.g. 0.001 or 1e-3", "is not a number (write e.g. 0.001 or 1e-3)")


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

WARNING_STYLE = "border: 2px solid #e0a100; border-radius: 3px; background: #fff8e1;"


def mark(widget: QWidget, problem: str | None, warning: bool = False) -> None:
    """Show `problem` on the widget (red border, amber for a warning, and the tooltip), or clear it; the
    `invalid` property says whether it is marked as an error (for tests and styles)."""
    shown = f"{warning}:{problem}"
    if widget.property("mark") == shown:  # marks are redone after every edit: restyle only what changed
        return
    widget.setProperty("mark", shown)
    help_text = widget.property("help_text")
    if help_text is None:
        help_text = widget.toolTip()
        widget.setProperty("help_text", help_text)
    widget.setProperty("invalid", problem is not None and not warning)
    # Selected by object name, so the style does not spill into children (a combo's pop-up, radio buttons).
    widget.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
    style = WARNING_STYLE if warning else INVALID_STYLE
    widget.setStyleSheet(f"#{widget.objectName()} {{ {style} }}" if problem else "")
    sign = "note" if warning else "⚠"
    widget.setToolTip(f"{sign} {problem}" + (f"\n\n{help_text}" if help_text else "") if problem else help_text)


def is_marked(widget: QWidget) -> bool:
    return bool(widget.property("invalid"))


def owns(binding_key: str, key: str) -> bool:
    """Whether a problem with `key` (``head.hidden[0]`` included) belongs to the field bound to `binding_key`."""
    return key == binding_key or key.startswith(binding_key + "[")


# ---------------------------------------------------------------- bindings


@dataclass
class Binding:
    key: str
    widget: QWidget
    read: Callable[[], Any]          # widget -> value; may raise ValueError
    write: Callable[[Any], None]     # value -> widget, without emitting an edit
    note: QLabel | None = None       # where a warning is spelled out under the field
    typed: str | None = None         # why the widget's value could not go into the project (it holds the old one)
    shown: ProjectError | None = None  # the engine's problem with the project's value, as last told


class FieldSet(QObject):
    """The bindings of one panel: loads a project into its widgets and commits edits back. A value the project
    refuses (`Project.set` checks it) stays in the widget, marked; what the engine says about the values the
    project holds (`engine.preflight`) is shown with `show`."""

    changed = Signal()                 # after an accepted edit
    problems_changed = Signal()        # after an edit the project refused

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.bindings: dict[str, Binding] = {}
        self.extra_widgets: list[QWidget] = []   # buttons etc. disabled while read-only
        self._loading = False

    # -- binding widgets

    def line(self, key: str, edit: QLineEdit, parse: Parse = str, fmt: Callable[[Any], str] = format_number,
             note: QLabel | None = None) -> Binding:
        b = Binding(key, edit, lambda: parse(edit.text()), lambda v: edit.setText(fmt(v)), note)
        edit.textEdited.connect(lambda _t: self.commit(key))
        return self._add(b)

    def combo(self, key: str, combo: QComboBox) -> Binding:
        """A combo whose items carry the project values as item data."""

        def write(v: Any) -> None:
            i = combo.findData(v)
            if i < 0:  # a value this machine does not offer (e.g. a project from elsewhere): show it anyway
                combo.addItem(str(v), v)
                i = combo.count() - 1
            combo.setCurrentIndex(i)

        b = Binding(key, combo, lambda: combo.currentData(), write)
        combo.activated.connect(lambda _i: self.commit(key))
        return self._add(b)

    def check_box(self, key: str, box: QCheckBox) -> Binding:
        b = Binding(key, box, box.isChecked, box.setChecked)
        box.clicked.connect(lambda _c: self.commit(key))
        return self._add(b)

    def custom(self, key: str, widget: QWidget, read: Callable[[], Any], write: Callable[[Any], None]) -> Binding:
        """Any other widget: the panel calls `commit(key)` when the person edits it."""
        return self._add(Binding(key, widget, read, write))

    def _add(self, b: Binding) -> Binding:
        self.bindings[b.key] = b
        return b

    # -- the contract

    def load(self, project: Project) -> None:
        """Show the project's values (nothing typed is pending any more)."""
        self.project = project
        self._loading = True
        try:
            for b in self.bindings.values():
                b.write(project.get(b.key))
                b.typed = None
                self._mark(b)
        finally:
            self._loading = False

    def commit(self, key: str) -> bool:
        """Put the widget's value into the project; False (the widget marked) when it cannot take it."""
        b = self.bindings[key]
        if self._loading or self.project is None:
            return False
        try:
            self.project.set(key, b.read())
            b.typed = None
        except ProjectError as exc:
            b.typed = exc.problem
        except ValueError as exc:
            b.typed = str(exc)
        self._mark(b)
        (self.changed if b.typed is None else self.problems_changed).emit()
        return b.typed is None

    def show(self, found: list[ProjectError]) -> None:
        """Mark each field with the engine's (first) problem about its key, unless its own text is refused."""
        for b in self.bindings.values():
            b.shown = next((e for e in found if owns(b.key, e.key)), None)
            self._mark(b)

    def _mark(self, b: Binding) -> None:
        shown = b.shown
        if b.typed is not None:
            mark(b.widget, b.typed)
        else:
            mark(b.widget, shown.problem if shown else None, warning=bool(shown and shown.warning))
        if b.note is not None:
            warning = shown.problem if shown is not None and shown.warning and b.typed is None else ""
            b.note.setText(warning)
            b.note.setVisible(bool(warning))

    def typed(self) -> list[ProjectError]:
        """A problem per widget showing a value the project does not hold (it keeps the previous one)."""
        return [ProjectError(b.key, b.typed) for b in self.bindings.values() if b.typed]

    def typed_problems(self) -> list[str]:
        """"key: why" for each widget showing a value the project does not hold."""
        return [str(e) for e in self.typed()]

    def is_typed_in(self, key: str) -> bool:
        """Whether `key` is edited by typing (each keystroke is an edit)."""
        b = self.bindings.get(key)
        return b is not None and isinstance(b.widget, QLineEdit)

    def widget_for(self, key: str) -> QWidget | None:
        """The widget of the field a problem with `key` belongs to."""
        return next((b.widget for b in self.bindings.values() if owns(b.key, key)), None)

    def problems(self) -> list[str]:
        """Every problem marked on these fields now, refused text first."""
        shown = [str(b.shown) for b in self.bindings.values()
                 if b.typed is None and b.shown is not None and not b.shown.warning]
        return self.typed_problems() + shown

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


def form_layout(parent: QWidget | None = None) -> QFormLayout:
    """A form whose labels go above their fields when the dock is narrow, instead of widening it."""
    form = QFormLayout(parent)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    return form


def path_row(edit: QLineEdit, *buttons: QWidget) -> QVBoxLayout:
    """A path field over its buttons: the path gets the whole width of a narrow dock, not what the buttons leave."""
    column = QVBoxLayout()
    column.setSpacing(2)
    column.addWidget(edit)
    row = QHBoxLayout()
    row.addStretch(1)
    for button in buttons:
        row.addWidget(button)
    column.addLayout(row)
    return column


def add_row(form: QFormLayout, label: str, widget: QWidget, help_text: str = "") -> QWidget:
    if help_text:
        widget.setToolTip(help_text)
    form.addRow(label, widget)
    return widget


class ProjectPanel(QWidget):
    """Base of the set-up panels: the shared contract with the main window."""

    changed = Signal()            # an accepted edit went into the project
    problems_changed = Signal()   # an edit was refused: `typed_problems()` changed

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

    def show_values(self) -> None:
        """Show the project's values again after they changed behind the fields (undo, redo)."""
        self.set_project(self.project)

    def set_read_only(self, read_only: bool) -> None:
        self.fields.set_read_only(read_only)

    def show_problems(self, found: list[ProjectError]) -> None:
        """Mark the fields with the engine's problems (`engine.preflight`) about their keys."""
        self.fields.show(found)

    def typed_problems(self) -> list[str]:
        return self.fields.typed_problems()

    def typed(self) -> list[ProjectError]:
        return self.fields.typed()

    def focus_field(self, key: str) -> bool:
        """Put the keyboard focus on the field of `key` (for "Can't start: ..."); False when it is not here."""
        widget = self.fields.widget_for(key)
        if widget is None:
            return False
        focus = widget if widget.focusPolicy() != Qt.FocusPolicy.NoFocus else widget.nextInFocusChain()
        focus.setFocus(Qt.FocusReason.OtherFocusReason)
        return True

    def problems(self) -> list[str]:
        return self.fields.problems()
