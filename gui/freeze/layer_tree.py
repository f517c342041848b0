"""The layer checklist's item model: a Qt tree over the engine's `LayerInfo`, one Trainable check box per row.

The freeze state is kept as one flag per *unit*: a module that owns parameters. For a module that also has
children (ViT's root with ``class_token``, its ``encoder`` with ``pos_embedding``) the unit is its own
"loose" parameters, which the engine's plans name one by one. Check boxes, presets and context-menu actions
only edit those flags; every row's shown state is derived from its subtree, and `frozen_paths()` turns the
flags back into the smallest set of paths that covers them, which is what the engine's `FreezePlan` holds.
Rows are numbered in pre-order (input to output, own tensors before children, as the engine orders units),
so a subtree is a contiguous range and all derived state is a few numpy prefix sums: cheap even for models
with thousands of modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from torch import nn

from engine.model.layers import LayerInfo

NAME, TYPE, PARAMS, TRAINABLE = range(4)
HEADERS = ("Layer", "Type", "Parameters", "Trainable")

SNOWFLAKE = "\u2744"
FROZEN_TINT = QColor(214, 232, 250)
PARTLY_TINT = QColor(236, 244, 252)
HEAD_TINT = QColor(222, 245, 222)
FROZEN_TEXT = QColor(70, 95, 130)

MANY_PARENTS = 16

# Row states (derived from the unit flags).
NO_PARAMS, TRAINABLE_ROW, FROZEN_ROW, PARTLY_ROW, HEAD_ROW = range(5)

_Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()


def loose_tensors(model: nn.Module) -> dict[str, list[str]]:
    """Own parameters of modules that also have children, by full name: the engine freezes them one by one."""
    out = {}
    for path, module in model.named_modules():
        names = [n for n, _ in module.named_parameters(recurse=False)]
        if names and next(module.children(), None) is not None:
            out[path] = [f"{path}.{n}" if path else n for n in names]
    return out


def _in_head(path: str, head_paths: Iterable[str]) -> bool:
    return any(path == h or path.startswith(h + ".") for h in head_paths)


class LayerTreeModel(QAbstractItemModel):
    """Qt model over one layer tree. `edited` fires after every change the person makes (not after `set_frozen`)."""

    edited = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._read_only = False
        self.head_word = "new"  # "kept" when the project keeps the source's own head
        self._load(None, (), {})

    # ------------------------------------------------------------ building

    def set_tree(
        self,
        info: LayerInfo | None,
        head_paths: Iterable[str] = (),
        loose: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Show a new layer tree (root included as the single top row); every unit starts trainable.

        `loose` maps each module that has both children and own parameters to those parameters' full names.
        """
        self.beginResetModel()
        self._load(info, tuple(head_paths), dict(loose or {}))
        self.endResetModel()

    def _load(self, info: LayerInfo | None, head_paths: tuple[str, ...], loose: dict[str, Sequence[str]]) -> None:
        infos: list[LayerInfo] = []
        parent: list[int] = []
        row: list[int] = []
        children: list[list[int]] = []
        stack: list[tuple[LayerInfo, int, int]] = [(info, -1, 0)] if info is not None else []
        while stack:
            node, up, r = stack.pop()
            i = len(infos)
            infos.append(node)
            parent.append(up)
            row.append(r)
            children.append([])
            if up >= 0:
                children[up].append(i)
            stack.extend((c, i, k) for k, c in reversed(list(enumerate(node.children))))
        n = len(infos)
        end = np.arange(1, n + 1)
        for i in range(n - 1, -1, -1):  # children come after their parent: fold subtree ends upwards
            if children[i]:
                end[i] = end[children[i][-1]]
        own = np.array([x.own_params for x in infos], dtype=np.int64)
        self._infos, self._row, self._children = infos, row, children
        self._parent = np.array(parent, dtype=np.int64)
        self._end = end
        self._own = own
        self._head_paths = head_paths
        self._head = np.array([_in_head(x.path, head_paths) for x in infos], dtype=bool)
        self._loose = [loose.get(x.path, ()) if c else () for x, c in zip(infos, children, strict=True)]
        self._unit = own > 0
        self._editable = self._unit & ~self._head
        self._frozen = np.zeros(n, dtype=bool)
        self._by_path = {x.path: i for i, x in enumerate(infos)}
        self._recompute()

    def _recompute(self) -> None:
        """Derive every row's state, its effective frozen flag and its subtree's trainable count."""
        n = len(self._infos)
        if n == 0:
            self._state = np.zeros(0, dtype=np.int8)
            self._frozen_eff = np.zeros(0, dtype=bool)
            self._trainable_sub = np.zeros(0, dtype=np.int64)
            return
        start, end = np.arange(n), self._end

        def subtree_sum(values: np.ndarray) -> np.ndarray:
            c = np.concatenate(([0], np.cumsum(values)))
            return c[end] - c[start]

        frozen = self._frozen & self._editable
        n_frozen = subtree_sum(frozen)
        n_edit = subtree_sum(self._editable)
        n_head = subtree_sum(self._unit & self._head)
        state = np.full(n, PARTLY_ROW, dtype=np.int8)
        state[n_frozen == 0] = TRAINABLE_ROW
        state[(n_frozen == n_edit) & (n_head == 0) & (n_edit > 0)] = FROZEN_ROW
        state[(n_edit == 0) & (n_head > 0)] = HEAD_ROW
        state[(n_edit == 0) & (n_head == 0)] = NO_PARAMS
        self._state = state
        self._frozen_eff = frozen
        self._trainable_sub = subtree_sum(np.where(self._frozen_eff, 0, self._own))

    # ------------------------------------------------------------ state in and out

    def set_frozen(self, is_frozen) -> None:
        """Set every unit from a predicate over paths (e.g. `FreezePlan.is_frozen`); no `edited`."""
        flags = np.zeros(len(self._infos), dtype=bool)
        for i in np.flatnonzero(self._editable):
            names = self._loose[i]
            flags[i] = is_frozen(names[0]) if names else is_frozen(self._infos[i].path)
        self._change(flags, announce=False)

    def frozen_paths(self) -> frozenset[str]:
        """The fewest paths that freeze exactly the frozen units: whole modules where possible, else tensors."""
        frozen_row = self._state == FROZEN_ROW
        parent_frozen = np.append(frozen_row, False)[self._parent]  # index -1 (the root's parent) reads False
        out = {self._infos[i].path for i in np.flatnonzero(frozen_row & ~parent_frozen)}
        for i in np.flatnonzero(self._frozen & ~frozen_row):  # loose tensors of a partly frozen module
            out.update(self._loose[i])
        return frozenset(out)

    def summary(self) -> tuple[int, int, int, int]:
        """(trainable parameters, all parameters, frozen layers, layers); a layer is a module with own parameters."""
        if not self._infos:
            return 0, 0, 0, 0
        layers = self._own > 0
        return (int(self._trainable_sub[0]), int(self._own.sum()), int(self._frozen_eff.sum()), int(layers.sum()))

    def segments(self) -> list[tuple[str, int, bool, bool]]:
        """(path, own parameters, frozen, head) of every module with own parameters, input to output."""
        return [
            (self._infos[i].path, int(self._own[i]), bool(self._frozen_eff[i]), bool(self._head[i]))
            for i in np.flatnonzero(self._own > 0)
        ]

    def row_state(self, path: str) -> int:
        return int(self._state[self._by_path[path]])

    def has_path(self, path: str) -> bool:
        return path in self._by_path

    def set_read_only(self, read_only: bool) -> None:
        self._read_only = read_only
        if self._infos:
            self._emit_rows(range(len(self._infos)), TRAINABLE, TRAINABLE)

    # ------------------------------------------------------------ edits the person makes

    def set_trainable(self, path: str, trainable: bool) -> None:
        """Check or uncheck a row: applies to every unit inside it."""
        i = self._by_path[path]
        flags = self._frozen.copy()
        flags[i : self._end[i]] = not trainable
        self._change(flags)

    def freeze_up_to(self, path: str) -> None:
        """Freeze every unit from the input up to and including this row's subtree; later units are kept."""
        flags = self._frozen.copy()
        flags[: self._end[self._by_path[path]]] = True
        self._change(flags)

    def unfreeze_from(self, path: str) -> None:
        """Make every unit from this row to the output trainable; earlier units are kept."""
        flags = self._frozen.copy()
        flags[self._by_path[path] :] = False
        self._change(flags)

    def freeze_only(self, path: str) -> None:
        """Freeze this row's subtree and nothing else."""
        i = self._by_path[path]
        flags = np.zeros_like(self._frozen)
        flags[i : self._end[i]] = True
        self._change(flags)

    def _change(self, flags: np.ndarray, announce: bool = True) -> None:
        flags = flags & self._editable
        if np.array_equal(flags, self._frozen):
            return
        old_state, old_eff = self._state, self._frozen_eff
        self._frozen = flags
        self._recompute()
        changed = np.flatnonzero((old_state != self._state) | (old_eff != self._frozen_eff))
        # Param-less rows take their tint from their parent: repaint the children of every changed row too.
        self._emit_rows(changed, NAME, TRAINABLE, with_children=True)
        if announce:
            self.edited.emit()

    def _emit_rows(self, nodes: Iterable[int], first_col: int, last_col: int, with_children: bool = False) -> None:
        """One dataChanged per parent, spanning the changed rows; one layout refresh when that is many parents.

        Each dataChanged costs the view dozens of calls back into Python; a preset on a model with a thousand
        modules would emit hundreds, so past `MANY_PARENTS` one layoutChanged (no rows move) repaints all.
        """
        spans: dict[int, list[int]] = {}
        for i in nodes:
            groups = [(self._parent[i], self._row[i], self._row[i])]
            if with_children and self._children[i]:
                groups.append((i, 0, len(self._children[i]) - 1))
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
        return self._infos[index.internalId()].path

    def index_of_path(self, path: str) -> QModelIndex:
        return self._index_of(self._by_path[path])

    def _index_of(self, i: int, column: int = 0) -> QModelIndex:
        i = int(i)
        return QModelIndex() if i < 0 else self.createIndex(self._row[i], column, i)

    def index(self, row: int, column: int, parent: _Index = _ROOT) -> QModelIndex:
        if not parent.isValid():
            return self.createIndex(row, column, 0) if row == 0 and self._infos else QModelIndex()
        kids = self._children[parent.internalId()]
        return self.createIndex(row, column, kids[row]) if 0 <= row < len(kids) else QModelIndex()

    def parent(self, index: _Index = _ROOT):  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        return self._index_of(self._parent[index.internalId()])

    def rowCount(self, parent: _Index = _ROOT) -> int:
        if not parent.isValid():
            return 1 if self._infos else 0
        if parent.column() != 0:
            return 0
        return len(self._children[parent.internalId()])

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
        i = index.internalId()
        if index.column() == TRAINABLE and not self._read_only and self._state[i] not in (NO_PARAMS, HEAD_ROW):
            f |= Qt.ItemFlag.ItemIsUserCheckable
        return f

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        i, col = index.internalId(), index.column()
        info, state = self._infos[i], int(self._state[i])
        shown = state
        if state == NO_PARAMS and self._parent[i] >= 0 and self._state[self._parent[i]] == FROZEN_ROW:
            shown = FROZEN_ROW  # a ReLU inside a frozen block looks frozen
        R = Qt.ItemDataRole
        if role == R.DisplayRole:
            if col == NAME:
                return info.name or info.path or "model"
            if col == TYPE:
                return info.type_name
            if col == PARAMS:
                return f"{info.total_params:,}" if info.total_params else ""
            if col == TRAINABLE:
                return {FROZEN_ROW: SNOWFLAKE + " frozen", PARTLY_ROW: SNOWFLAKE + " partly", HEAD_ROW: self.head_word}.get(
                    state, ""
                )
        elif role == R.CheckStateRole and col == TRAINABLE:
            return {
                TRAINABLE_ROW: Qt.CheckState.Checked,
                HEAD_ROW: Qt.CheckState.Checked,
                FROZEN_ROW: Qt.CheckState.Unchecked,
                PARTLY_ROW: Qt.CheckState.PartiallyChecked,
            }.get(state)
        elif role == R.BackgroundRole:
            tint = {FROZEN_ROW: FROZEN_TINT, PARTLY_ROW: PARTLY_TINT, HEAD_ROW: HEAD_TINT}.get(shown)
            return QBrush(tint) if tint is not None else None
        elif role == R.ForegroundRole and shown == FROZEN_ROW:
            return QBrush(FROZEN_TEXT)
        elif role == R.TextAlignmentRole and col == PARAMS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == R.ToolTipRole:
            return self._tooltip(i, state)
        return None

    def _tooltip(self, i: int, state: int) -> str:
        info = self._infos[i]
        lines = [info.path or "the whole model", f"{info.type_name}: {info.total_params:,} parameters"]
        if info.total_params:
            lines.append(f"trainable: {int(self._trainable_sub[i]):,}")
        if self._loose[i]:
            own = "frozen" if self._frozen[i] else "trainable"
            lines.append(f"own tensors ({own} with this row): {', '.join(self._loose[i])}")
        if state == HEAD_ROW:
            lines.append(f"the {self.head_word} head: always trained")
        elif state == FROZEN_ROW:
            lines.append("frozen: runs forward, gets no weight updates")
        return "\n".join(lines)

    def setData(self, index: _Index, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or not (self.flags(index) & Qt.ItemFlag.ItemIsUserCheckable):
            return False
        state = Qt.CheckState(value) if isinstance(value, int) else value
        self.set_trainable(self.path_of(index), state != Qt.CheckState.Unchecked)
        return True
