"""The layer checklist's view: the keyboard, and the rows a person opened kept when the tree is rebuilt.

Space ticks or unticks the current row and Return opens or closes it; arrows move as in any Qt tree. A rebuild
(another head, the classes found by the scan) shows a new checklist; `view_state` and `restore_view` match rows
by module path, so the rows that are still there stay open, current and scrolled to as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QTreeView

from gui.freeze.layer_tree import TRAINABLE_COLUMN


@dataclass(frozen=True)
class ViewState:
    """What a person set up in the view, by module path: the open rows, the current one, the one at the top."""

    paths: frozenset[str]  # every row the tree had: a row not among them is new and opens as a fresh tree's would
    expanded: frozenset[str]
    current: str | None
    top: str | None


class LayerTreeView(QTreeView):
    """A tree view over a `LayerTreeModel` (gui.freeze.layer_tree) that works from the keyboard."""

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        index = self.currentIndex()
        if index.isValid() and event.key() == Qt.Key.Key_Space:
            # Qt's own check-box path, as for a click: the delegate toggles the box (partly ticked -> ticked) and
            # the model takes it only where the row can change (not the head, not while read-only).
            self.edit(index.siblingAtColumn(TRAINABLE_COLUMN), QAbstractItemView.EditTrigger.AnyKeyPressed, event)
        elif index.isValid() and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            index = index.siblingAtColumn(0)
            if self.model().hasChildren(index):
                self.setExpanded(index, not self.isExpanded(index))
        else:
            super().keyPressEvent(event)

    def view_state(self) -> ViewState | None:
        """The open rows (under a closed one too: Qt shows them open again with it), the current row, the top one."""
        m = self.model()
        c = m.checklist
        if c is None:
            return None
        parents = [x.path for x, kids in zip(c.infos, c.children, strict=True) if kids]
        expanded = frozenset(p for p in parents if self.isExpanded(m.index_of_path(p)))
        current, top = self.currentIndex(), self.indexAt(QPoint(1, 1))
        return ViewState(frozenset(x.path for x in c.infos), expanded,
                         m.path_of(current) if current.isValid() else None, m.path_of(top) if top.isValid() else None)

    def restore_view(self, state: ViewState | None, fresh: set[str]) -> None:
        """Open the rows `state` had open that are still there, and the rows of `fresh` (what a new tree opens)
        that were not there; then the current row and the scroll position, where their rows are still there."""
        m = self.model()
        opened = fresh if state is None else state.expanded | (fresh - state.paths)
        for path in opened:
            if m.has_path(path):
                self.expand(m.index_of_path(path))
        if state is None:
            return
        if state.current is not None and m.has_path(state.current):
            self.setCurrentIndex(m.index_of_path(state.current))
        if state.top is not None and m.has_path(state.top):
            self.scrollTo(m.index_of_path(state.top), QAbstractItemView.ScrollHint.PositionAtTop)
