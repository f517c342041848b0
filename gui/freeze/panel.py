"""The layer checklist: presets, the BatchNorm policy, the layer tree, a freeze strip and a summary line.

The panel edits one project's [freeze] section. Presets go through the engine (`plan_for`), so the GUI and
``python main.py train`` freeze the same modules; hand edits in the tree switch the preset to "custom" and
store the frozen module paths. Every edit is written into the bound `FreezeSettings` before `changed` fires.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QRadioButton,
    QSpinBox,
    QTreeView,
    QVBoxLayout,
    QWidget,
)
from torch import nn

from engine.errors import ThawError
from engine.model.checklist import plan_for, plan_from_project
from engine.model.freezing import FreezePlan
from engine.model.layers import blocks, describe
from engine.project import FreezeSettings
from gui.freeze.layer_tree import (
    FROZEN_ROW,
    HEAD_ROW,
    NAME,
    PARAMS,
    PARTLY_ROW,
    TRAINABLE_ROW,
    TYPE,
    LayerTreeModel,
    loose_tensors,
)
from gui.freeze.strip import (
    FROZEN,
    FROZEN_COLOUR,
    HEAD,
    HEAD_COLOUR,
    PARTLY,
    TRAINABLE,
    TRAINABLE_COLOUR,
    FreezeStrip,
    Segment,
)

PRESETS = {
    "feature_extraction": ("Feature extraction", "Freeze the whole network; train only the head."),
    "last_blocks": ("Last", "Train the last N blocks and the head; freeze the rest."),
    "full": ("Full fine-tune", "Train every layer."),
    "custom": ("Custom", "Your own choice of frozen layers (edit the check boxes)."),
}
BN_CHOICES = (
    (False, "keep statistics fixed", "Frozen BatchNorm layers run in eval mode: their running statistics stay as loaded."),
    (True, "update statistics", "Frozen BatchNorm layers still update their running mean and variance."),
)
_ROW_TO_STRIP = {FROZEN_ROW: FROZEN, PARTLY_ROW: PARTLY, TRAINABLE_ROW: TRAINABLE, HEAD_ROW: HEAD}


def _percent(part: int, whole: int) -> str:
    if not whole:
        return "0%"
    p = 100.0 * part / whole
    return "<0.1%" if 0 < p < 0.1 else f"{p:.1f}%"


class FreezePanel(QWidget):
    """Edits a project's [freeze] section over the layer tree of one model (a meta-device skeleton is enough)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model: nn.Module | None = None
        self._head_paths: tuple[str, ...] = ()
        self._blocks: list[str] = []
        self._settings = FreezeSettings()
        self._plan: FreezePlan | None = None
        self._read_only = False
        self._error = ""
        self._build()
        self._show_settings()

    # ------------------------------------------------------------ layout

    def _build(self) -> None:
        self.presets = QButtonGroup(self)
        self.preset_buttons: dict[str, QRadioButton] = {}
        row = QHBoxLayout()
        row.addWidget(QLabel("Preset:"))
        for key, (label, tip) in PRESETS.items():
            button = QRadioButton(label)
            button.setToolTip(tip)
            self.presets.addButton(button)
            self.preset_buttons[key] = button
            row.addWidget(button)
            if key == "last_blocks":
                self.last_blocks = QSpinBox()
                self.last_blocks.setRange(0, 1000)
                self.last_blocks.setToolTip(tip)
                self.last_blocks.setKeyboardTracking(False)
                row.addWidget(self.last_blocks)
                self.blocks_label = QLabel("blocks")
                row.addWidget(self.blocks_label)
            button.toggled.connect(lambda on, k=key: on and self._preset_chosen(k))
        row.addStretch(1)
        self.last_blocks.valueChanged.connect(self._last_blocks_changed)

        bn_row = QHBoxLayout()
        bn_row.addWidget(QLabel("Frozen BatchNorm:"))
        self.bn_policy = QComboBox()
        for value, label, tip in BN_CHOICES:
            self.bn_policy.addItem(label, value)
            self.bn_policy.setItemData(self.bn_policy.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.bn_policy.setToolTip("What BatchNorm layers inside frozen parts do with their running statistics.")
        self.bn_policy.currentIndexChanged.connect(self._bn_changed)
        bn_row.addWidget(self.bn_policy)
        bn_row.addStretch(1)
        self.read_only_label = QLabel("Read-only while a run is going")
        self.read_only_label.setStyleSheet("color: #8a5a00; font-weight: bold;")
        self.read_only_label.setVisible(False)
        bn_row.addWidget(self.read_only_label)

        self.tree_model = LayerTreeModel(self)
        self.tree_model.edited.connect(self._tree_edited)
        self.tree = QTreeView()
        self.tree.setModel(self.tree_model)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        fm = QFontMetrics(self.font())
        header.resizeSection(TYPE, fm.horizontalAdvance("Conv2dNormActivation") + 16)
        header.resizeSection(PARAMS, fm.horizontalAdvance("000,000,000") + 16)
        header.resizeSection(3, fm.horizontalAdvance("\u2744 partly") + 48)

        self.strip = FreezeStrip()
        self.strip.module_clicked.connect(self.show_module)
        self.strip.mode_changed.connect(lambda _mode: self._refresh_strip())
        middle = QHBoxLayout()
        middle.addWidget(self.strip)
        middle.addWidget(self.tree, 1)

        self.summary = QLabel()
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        legend = QLabel(
            " ".join(
                f'<span style="color:{c.name()}">\u25a0</span> {label}'
                for c, label in ((FROZEN_COLOUR, "frozen"), (TRAINABLE_COLOUR, "trainable"), (HEAD_COLOUR, "head"))
            )
        )
        legend.setToolTip("Colours of the strip left of the tree (input at the top, head at the bottom)")
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(legend)

        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addLayout(bn_row)
        layout.addLayout(middle, 1)
        layout.addLayout(bottom)

    # ------------------------------------------------------------ the API the main window uses

    def set_model(self, model: nn.Module | None, head_paths: Sequence[str] = (), head_kept: bool = False) -> None:
        """Show this model's layers (None clears the tree) and apply the bound settings to them. `head_kept`:
        the head is the source's own classifier, not a new one."""
        self._model = model
        self.tree_model.head_word = "kept" if head_kept else "new"
        self._head_paths = tuple(head_paths)
        if model is None:
            self._blocks = []
            self.tree_model.set_tree(None)
        else:
            self._blocks = blocks(model, self._head_paths)
            self.tree_model.set_tree(describe(model, None, self._head_paths), self._head_paths, loose_tensors(model))
            self._expand_to_blocks()
        self.last_blocks.setMaximum(max(len(self._blocks), self._settings.last_blocks, 1))
        self.blocks_label.setText(f"of {len(self._blocks)} blocks" if self._blocks else "blocks")
        self._plan_from_settings()

    def _expand_to_blocks(self) -> None:
        """Open the tree down to the blocks and the head: the rows a person freezes or thaws first."""
        opened: set[str] = set()
        for path in (*self._blocks, *self._head_paths):
            while path:
                path = path.rpartition(".")[0]
                opened.add(path)
        for path in sorted(opened, key=len):
            if self.tree_model.has_path(path):
                self.tree.expand(self.tree_model.index_of_path(path))

    def set_freeze_settings(self, settings: FreezeSettings) -> None:
        """Bind a project's [freeze] section: show it, and write every later edit into this object."""
        self._settings = settings
        self.last_blocks.setMaximum(max(len(self._blocks), settings.last_blocks, 1))
        self._plan_from_settings()

    def apply_to(self, settings: FreezeSettings) -> None:
        """Write the panel's current choice into another [freeze] section (e.g. a copy about to be run)."""
        for f in dataclasses.fields(FreezeSettings):
            value = getattr(self._settings, f.name)
            setattr(settings, f.name, list(value) if isinstance(value, list) else value)

    def current_plan(self) -> FreezePlan | None:
        """The plan a run of the bound settings would use; None until a model is set."""
        if self._plan is None:
            return None
        return dataclasses.replace(self._plan, train_frozen_bn=self._settings.train_frozen_bn)

    def set_read_only(self, read_only: bool) -> None:
        """Block every edit (during a run) while keeping the tree scrollable; says so visibly."""
        self._read_only = read_only
        for w in (*self.preset_buttons.values(), self.last_blocks, self.bn_policy):
            w.setEnabled(not read_only)
        self.tree_model.set_read_only(read_only)
        self.read_only_label.setVisible(read_only)
        self.tree.setStyleSheet("QTreeView { background: #eeeeee; }" if read_only else "")

    def is_read_only(self) -> bool:
        return self._read_only

    def show_module(self, path: str) -> None:
        """Scroll the tree to a module (expanding its parents) and select it."""
        if self.tree_model.has_path(path):
            index = self.tree_model.index_of_path(path)
            self.tree.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
            self.tree.setCurrentIndex(index)

    # ------------------------------------------------------------ settings <-> plan

    def _plan_from_settings(self) -> None:
        """Recompute the plan from the bound settings (no `changed`: nothing was edited)."""
        self._error = ""
        if self._model is None:
            self._plan = None
        else:
            try:
                self._plan = plan_from_project(self._model, self._settings, self._head_paths)
            except ThawError as exc:
                self._error = str(exc)
                self._plan = plan_for(self._model, "feature_extraction", head_paths=self._head_paths)
            self.tree_model.set_frozen(self._plan.is_frozen)
        self._show_settings()

    def _show_settings(self) -> None:
        s = self._settings
        for key, button in self.preset_buttons.items():
            button.blockSignals(True)
            button.setChecked(key == s.preset)
            button.blockSignals(False)
        self.preset_buttons["custom"].setVisible(s.preset == "custom")
        self.last_blocks.blockSignals(True)
        self.last_blocks.setValue(s.last_blocks)
        self.last_blocks.blockSignals(False)
        self.bn_policy.blockSignals(True)
        self.bn_policy.setCurrentIndex(1 if s.train_frozen_bn else 0)
        self.bn_policy.blockSignals(False)
        self._refresh_summary()
        self._refresh_strip()

    def _edited(self) -> None:
        self._show_settings()
        self.changed.emit()

    def _preset_chosen(self, preset: str) -> None:
        if self._read_only or preset == "custom":
            return
        self._settings.preset = preset
        self._settings.frozen = []
        if self._model is not None:
            self._plan = plan_for(
                self._model,
                preset,
                last_blocks=self._settings.last_blocks,
                train_frozen_bn=self._settings.train_frozen_bn,
                head_paths=self._head_paths,
            )
            self.tree_model.set_frozen(self._plan.is_frozen)
        self._edited()

    def _last_blocks_changed(self, n: int) -> None:
        if self._read_only:
            return
        self._settings.last_blocks = n
        if self._settings.preset == "last_blocks":
            self._preset_chosen("last_blocks")
        else:
            self.preset_buttons["last_blocks"].setChecked(True)  # -> _preset_chosen via toggled

    def _bn_changed(self, index: int) -> None:
        if self._read_only:
            return
        self._settings.train_frozen_bn = bool(self.bn_policy.itemData(index))
        self._edited()

    def _tree_edited(self) -> None:
        self._settings.preset = "custom"
        self._settings.frozen = sorted(self.tree_model.frozen_paths())
        self._plan = FreezePlan(frozenset(self._settings.frozen), self._settings.train_frozen_bn)
        self._edited()

    # ------------------------------------------------------------ views of the state

    def _refresh_summary(self) -> None:
        if self._model is None:
            self.summary.setText("No model yet: choose an architecture.")
            return
        trainable, total, frozen, layers = self.tree_model.summary()
        text = (
            f"Trainable {trainable:,} / {total:,} parameters ({_percent(trainable, total)})"
            f" \u00b7 {frozen} of {layers} layers frozen"
        )
        if self._error:
            text += f" \u00b7 {self._error}"
        self.summary.setText(text)
        self.summary.setStyleSheet("color: #b00020;" if self._error else "")

    def _refresh_strip(self) -> None:
        if self._model is None:
            self.strip.set_segments([])
            return
        if self.strip.mode() == "params":
            segments = [
                Segment(path, float(n), HEAD if head else FROZEN if frozen else TRAINABLE)
                for path, n, frozen, head in self.tree_model.segments()
            ]
        else:
            segments = [Segment(b, 1.0, _ROW_TO_STRIP.get(self.tree_model.row_state(b), TRAINABLE)) for b in self._blocks]
            segments += [Segment(h, 1.0, HEAD) for h in self._head_paths if h not in self._blocks]
        self.strip.set_segments(segments)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        if not index.isValid():
            return
        path = self.tree_model.path_of(index)
        editable = not self._read_only and self.tree_model.row_state(path) != HEAD_ROW
        menu = QMenu(self)
        for label, action in (
            ("Freeze up to here", self.tree_model.freeze_up_to),
            ("Unfreeze from here", self.tree_model.unfreeze_from),
            ("Freeze only this", self.tree_model.freeze_only),
        ):
            item = menu.addAction(label)
            item.setEnabled(editable)
            item.triggered.connect(lambda _=False, a=action: a(path))
        menu.exec(self.tree.viewport().mapToGlobal(pos))
