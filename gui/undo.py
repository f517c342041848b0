"""Undo and redo of project edits (Edit menu, Ctrl+Z / Ctrl+Shift+Z).

Each step holds the whole project before and after one edit, as plain data (`engine.project.to_dict`), so
undoing puts back every value the edit changed at once, whichever panel made it (a changed architecture and
the freeze plan reset with it are one step). Keystrokes into one text field make one step, not one per
character; every checklist edit is a step of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.project import SECTIONS, Project, from_dict, to_dict

Snapshot = dict[str, Any]

CHECKLIST_KEYS = ("freeze.frozen", "freeze.preset")  # what a tick in the checklist changes
_NAMES = {"freeze.frozen": "layer checklist", "freeze.preset": "freeze preset", "freeze.last_blocks": "last blocks",
          "freeze.train_frozen_bn": "BatchNorm policy", "freeze.stages": "unfreezing schedule"}


def changed_keys(before: Snapshot, after: Snapshot) -> tuple[str, ...]:
    """The dotted keys whose values differ (``train.lr``, ``name``), in the project's order."""
    keys = ["name"] if before.get("name") != after.get("name") else []
    for section in SECTIONS:
        old, new = before.get(section, {}), after.get(section, {})
        keys += [f"{section}.{k}" for k in new if old.get(k) != new.get(k)]
    return tuple(keys)


def put_back(project: Project, snapshot: Snapshot) -> None:
    """Give `project` the values of `snapshot` in place: the panels keep writing into the same objects."""
    restored = from_dict(snapshot, project.base_dir)
    project.name = restored.name
    for section in SECTIONS:
        target, source = getattr(project, section), getattr(restored, section)
        for f in dataclasses.fields(target):
            setattr(target, f.name, getattr(source, f.name))


def describe(keys: tuple[str, ...]) -> str:
    """What a step changed, for "Undo <it>" in the Edit menu."""
    if all(k in CHECKLIST_KEYS for k in keys):
        return "layer checklist"
    names = [_NAMES.get(k, k) for k in keys if not k.startswith("freeze.")] or [_NAMES.get(k, k) for k in keys]
    return ", ".join(names) if len(names) <= 2 else f"{len(names)} settings"


class _Edit(QUndoCommand):
    MERGES = 1  # `id()` of a step that a next step of the same text field joins

    def __init__(self, history: ProjectHistory, before: Snapshot, after: Snapshot, keys: tuple[str, ...],
                 typed: bool) -> None:
        super().__init__(describe(keys))
        self.history, self.before, self.after, self.keys, self.typed = history, before, after, keys, typed
        self._done = True  # pushed after the edit was made: the first redo() has nothing to do

    def id(self) -> int:  # noqa: A003 (Qt's name)
        return self.MERGES if self.typed else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802
        if not isinstance(other, _Edit) or other.keys != self.keys:
            return False
        self.after = other.after
        self.setObsolete(self.after == self.before)  # typed back to what it was: no step at all
        return True

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self.history.show(self.after)

    def undo(self) -> None:
        self.history.show(self.before)


class ProjectHistory(QObject):
    """The undo stack of one window's project. `record` after each edit; `reset` when another project is shown.

    `apply(snapshot)` is the window's: it gives the project those values and shows them. `typed(key)` says
    whether a key is edited by typing (its steps merge)."""

    changed = Signal()  # what can be undone or redone changed

    def __init__(self, project: Callable[[], Project], apply: Callable[[Snapshot], None],
                 typed: Callable[[str], bool], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stack = QUndoStack(self)
        self.stack.setObjectName("undoStack")
        self._project, self._apply, self._typed = project, apply, typed
        self._last: Snapshot = to_dict(project())
        self.stack.indexChanged.connect(self.changed)
        self.stack.cleanChanged.connect(self.changed)

    def record(self) -> None:
        """Make the edit just done (if it changed anything) a step."""
        now = to_dict(self._project())
        keys = changed_keys(self._last, now)
        if not keys:
            return
        typed = len(keys) == 1 and self._typed(keys[0])
        before, self._last = self._last, now
        self.stack.push(_Edit(self, before, now, keys, typed))

    def reset(self) -> None:
        """Another project (or the same one saved elsewhere, its paths rebased): nothing to undo."""
        self.stack.clear()
        self._last = to_dict(self._project())

    def saved(self) -> None:
        """The project as it is now is on disk: undoing back here makes it unmodified again. A save elsewhere
        rebased its relative paths, which the older steps would put back wrong: they go."""
        if to_dict(self._project()) != self._last:
            self.reset()
        self.stack.setClean()

    def is_clean(self) -> bool:
        return self.stack.isClean()

    def show(self, snapshot: Snapshot) -> None:
        self._last = snapshot
        self._apply(snapshot)

    def undo(self) -> None:
        self.stack.undo()

    def redo(self) -> None:
        self.stack.redo()
