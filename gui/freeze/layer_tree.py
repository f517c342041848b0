"""The layer checklist's Qt item model: a thin adapter over the engine's `Checklist`.

Rows, their states, the unit flags and every edit are the checklist's (`engine.model.checklist`); this model
only maps its pre-order rows to Qt indexes, draws them (check box, tint, tooltip) and tells the view which rows
an edit repainted (as napari's ``qt_tree_model.py`` adapts a pure tree). Its last column shows, during a run,
which blocks are learning: log10 of the update ratio ||dW|| / ||W|| in a cell coloured from blue (too slow) through
green (about -3, the rule of thumb) to red (too fast).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from engine.model.checklist import FROZEN, HEAD, NO_PARAMS, PARTLY, TRAINABLE, UNKNOWN_COUNT, Checklist

NAME, TYPE, PARAMS, TRAINABLE_COLUMN, ACTIVITY = range(5)
HEADERS = ("Layer", "Type", "Parameters", "Trainable", "Learns")
HEALTHY = -3.0  # log10 of the update ratio at the middle of the activity scale
SPAN = 2.0  # decades either side of it, to the scale's ends

SNOWFLAKE = "\u2744"
FROZEN_TINT = QColor(214, 232, 250)
PARTLY_TINT = QColor(236, 244, 252)
HEAD_TINT = QColor(222, 245, 222)
FROZEN_TEXT = QColor(70, 95, 130)

MANY_PARENTS = 16
CHECKS = {TRAINABLE: Qt.CheckState.Checked, HEAD: Qt.CheckState.Checked, FROZEN: Qt.CheckState.Unchecked,
          PARTLY: Qt.CheckState.PartiallyChecked}
TINTS = {FROZEN: FROZEN_TINT, PARTLY: PARTLY_TINT, HEAD: HEAD_TINT}

_Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()


def activity_colour(log_ratio: float) -> QColor:
    """The heat of a block's log10 update ratio: blue below the scale, green at `HEALTHY`, red above it."""
    t = min(1.0, max(-1.0, (log_ratio - HEALTHY) / SPAN))
    low, mid, high = (120, 160, 230), (120, 205, 120), (235, 110, 90)
    a, b = (mid, high) if t >= 0 else (mid, low)
    t = abs(t)
    return QColor(*(round(x + t * (y - x)) for x, y in zip(a, b, strict=True)))


class LayerTreeModel(QAbstractItemModel):
    """Qt model over one `Checklist`. `edited` fires after every change the person makes (not after `load`)."""

    edited = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._read_only = False
        self.head_word = "new"  # "kept" when the project keeps the source's own head
        self.checklist: Checklist | None = None
        self.activity: dict[int, tuple[bool, float, float, int]] = {}  # row -> (trained, ratio, grad norm, step)

    def set_checklist(self, checklist: Checklist | None) -> None:
        """Show another model's checklist (None: no rows)."""
        self.beginResetModel()
        self.checklist = checklist
        self.activity = {}
        self.endResetModel()

    def set_activity(self, rows: dict[int, tuple[bool, float, float, int]]) -> None:
        """The last measurement of which blocks learn, by row: (trained, update ratio, gradient norm, step)."""
        changed = set(rows) | set(self.activity)
        self.activity = dict(rows)
        if self.checklist is not None and changed:
            self._emit_rows(sorted(changed), ACTIVITY, ACTIVITY)

    # ------------------------------------------------------------ edits, through the checklist

    def set_trainable(self, path: str, trainable: bool) -> None:
        self._edit(lambda c: c.set_trainable(path, trainable))

    def freeze_up_to(self, path: str) -> None:
        self._edit(lambda c: c.freeze_up_to(path))

    def unfreeze_from(self, path: str) -> None:
        self._edit(lambda c: c.unfreeze_from(path))

    def freeze_only(self, path: str) -> None:
        self._edit(lambda c: c.freeze_only(path))

    def show_change(self, change: Callable[[Checklist], np.ndarray]) -> None:
        """Apply a change that is not the person's own edit (a preset, a project loaded): no `edited`."""
        if self.checklist is not None:
            self._repaint(change(self.checklist))

    def _edit(self, change: Callable[[Checklist], np.ndarray]) -> None:
        if self.checklist is None or self._read_only:
            return
        changed = change(self.checklist)
        if len(changed):
            self._repaint(changed)
            self.edited.emit()

    def repaint_all(self) -> None:
        """Every row may have changed (settings loaded onto the checklist): one layout refresh, no `edited`."""
        self.layoutAboutToBeChanged.emit()
        self.layoutChanged.emit()

    def set_read_only(self, read_only: bool) -> None:
        self._read_only = read_only
        if self.checklist is not None and len(self.checklist):
            self._emit_rows(range(len(self.checklist)), TRAINABLE_COLUMN, TRAINABLE_COLUMN)

    # ------------------------------------------------------------ repainting

    def _repaint(self, changed: np.ndarray) -> None:
        # Param-less rows take their tint from their parent: repaint the children of every changed row too.
        self._emit_rows(changed, NAME, TRAINABLE_COLUMN, with_children=True)

    def _emit_rows(self, nodes: Iterable[int], first_col: int, last_col: int, with_children: bool = False) -> None:
        """One dataChanged per parent, spanning the changed rows; one layout refresh when that is many parents.

        Each dataChanged costs the view dozens of calls back into Python; a preset on a model with a thousand
        modules would emit hundreds, so past `MANY_PARENTS` one layoutChanged (no rows move) repaints all.
        """
        c = self.checklist
        spans: dict[int, list[int]] = {}
        for i in nodes:
            groups = [(int(c.parent[i]), int(c.row[i]), int(c.row[i]))]
            if with_children and c.children[i]:
                groups.append((int(i), 0, len(c.children[i]) - 1))
            for up, lo, hi in groups:
                span = spans.setdefault(up, [lo, hi])
                span[0], span[1] = min(span[0], lo), max(span[1], hi)
        if len(spans) > MANY_PARENTS:
            self.layoutAboutToBeChanged.emit()
            self.layoutChanged.emit()
            return
        for up, (lo, hi) in spans.items():
            top = self._index_of(up)
            self.dataChanged.emit(self.index(lo, first_col, top), self.index(hi, last_col, top))

    # ------------------------------------------------------------ QAbstractItemModel

    def path_of(self, index: _Index) -> str:
        return self.checklist.infos[index.internalId()].path

    def index_of_path(self, path: str) -> QModelIndex:
        return self._index_of(self.checklist.index(path))

    def has_path(self, path: str) -> bool:
        return self.checklist is not None and self.checklist.has(path)

    def _index_of(self, i: int, column: int = 0) -> QModelIndex:
        i = int(i)
        return QModelIndex() if i < 0 else self.createIndex(int(self.checklist.row[i]), column, i)

    def index(self, row: int, column: int, parent: _Index = _ROOT) -> QModelIndex:
        if self.checklist is None:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0) if row == 0 and len(self.checklist) else QModelIndex()
        kids = self.checklist.children[parent.internalId()]
        return self.createIndex(row, column, kids[row]) if 0 <= row < len(kids) else QModelIndex()

    def parent(self, index: _Index = _ROOT):  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        return self._index_of(self.checklist.parent[index.internalId()])

    def rowCount(self, parent: _Index = _ROOT) -> int:
        if self.checklist is None:
            return 0
        if not parent.isValid():
            return 1 if len(self.checklist) else 0
        if parent.column() != 0:
            return 0
        return len(self.checklist.children[parent.internalId()])

    def columnCount(self, parent: _Index = _ROOT) -> int:
        return len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == TRAINABLE_COLUMN and not self._read_only and self.checklist.can_edit(index.internalId()):
            f |= Qt.ItemFlag.ItemIsUserCheckable
        return f

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        c = self.checklist
        i, col = index.internalId(), index.column()
        info, state = c.infos[i], int(c.states[i])
        shown = state
        if state == NO_PARAMS and c.parent[i] >= 0 and c.states[c.parent[i]] == FROZEN:
            shown = FROZEN  # a ReLU inside a frozen block looks frozen
        R = Qt.ItemDataRole
        if role == R.DisplayRole:
            if col == NAME:
                return info.name or info.path or "model"
            if col == TYPE:
                return info.type_name
            if col == PARAMS:
                counts = c.counts(i)
                return "?" if counts is None else f"{counts[0]:,}" if counts[0] else ""
            if col == TRAINABLE_COLUMN:
                return {FROZEN: SNOWFLAKE + " frozen", PARTLY: SNOWFLAKE + " partly", HEAD: self.head_word}.get(state, "")
            if col == ACTIVITY and i in self.activity:
                trained, ratio = self.activity[i][:2]
                return "\u2013" if not trained else f"{math.log10(ratio):.1f}" if ratio > 0 else "0"
        elif col == ACTIVITY and i in self.activity:
            return self._activity_data(i, role)
        elif role == R.CheckStateRole and col == TRAINABLE_COLUMN:
            return CHECKS.get(state)
        elif role == R.BackgroundRole:
            tint = TINTS.get(shown)
            return QBrush(tint) if tint is not None else None
        elif role == R.ForegroundRole and shown == FROZEN:
            return QBrush(FROZEN_TEXT)
        elif role == R.TextAlignmentRole and col == PARAMS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == R.ToolTipRole:
            return self._tooltip(i, state)
        return None

    def _activity_data(self, i: int, role: int):
        trained, ratio, grad, step = self.activity[i]
        R = Qt.ItemDataRole
        if role == R.BackgroundRole and trained and ratio > 0:
            return QBrush(activity_colour(math.log10(ratio)))
        if role == R.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == R.ToolTipRole:
            if not trained:
                return f"{self.checklist.infos[i].path or 'model'}: frozen at step {step}, no update (as it should be)"
            return (f"{self.checklist.infos[i].path or 'model'} at step {step}: update ratio ||dW|| / ||W|| = "
                    f"{ratio:.2g} (log10 {math.log10(ratio) if ratio > 0 else -math.inf:.1f}; about -3 is healthy, "
                    f"far below: it hardly learns, far above: too fast), gradient norm {grad:.3g}")
        return None

    def _tooltip(self, i: int, state: int) -> str:
        c = self.checklist
        info = c.infos[i]
        counts = c.counts(i)
        total = "?" if counts is None else f"{counts[0]:,}"
        lines = [info.path or "the whole model", f"{info.type_name}: {total} parameters"]
        if counts is None:
            lines.append(UNKNOWN_COUNT)
        elif counts[0]:
            lines.append(f"trainable: {counts[1]:,}")
        if c.loose[i]:
            own = "frozen" if c.frozen[i] else "trainable"
            lines.append(f"own tensors ({own} with this row): {', '.join(c.loose[i])}")
        if state == HEAD:
            lines.append(f"the {self.head_word} head: always trained")
        elif state == FROZEN:
            lines.append("frozen: runs forward, gets no weight updates")
        return "\n".join(lines)

    def setData(self, index: _Index, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or not (self.flags(index) & Qt.ItemFlag.ItemIsUserCheckable):
            return False
        state = Qt.CheckState(value) if isinstance(value, int) else value
        self.set_trainable(self.path_of(index), state != Qt.CheckState.Unchecked)
        return True
