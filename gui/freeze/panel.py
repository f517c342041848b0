"""The layer checklist: presets, the BatchNorm policy, the layer tree, the unfreezing schedule's timeline and a
summary line.

The panel edits one project's [freeze] section through the engine's `Checklist`: presets are its flag
patterns, hand edits in the tree are its edits, and `Checklist.store` writes the ticks back as the preset they
equal (or as custom paths), so the window and ``python main.py train`` freeze the same tensors. The schedule's
presets and moved boundaries (`SchedulePane`) are the engine's too (`engine.model.schedule`). Every edit is
written into the bound `FreezeSettings` before `changed` fires. During a run the timeline shows where it is and the
tree which layers are learning (`show_now`, `show_activity`).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.errors import ProjectError
from engine.events import LayerActivity
from engine.model import checklist as cl
from engine.model import schedule
from engine.model.freezing import FreezePlan
from engine.project import FreezeSettings, TrainSettings
from gui.flow_layout import FlowLayout
from gui.freeze.advice_bars import AdviceColumn
from gui.freeze.layer_tree import ACTIVITY, NAME, PARAMS, TRAINABLE_COLUMN, TYPE, LayerTreeModel
from gui.freeze.schedule_pane import SchedulePane
from gui.freeze.timeline import FAST_COLOUR, FROZEN_COLOUR, SLOW_COLOUR
from gui.freeze.tree_view import LayerTreeView
from gui.naming import named
from gui.text import WrappingLabel

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
CONTEXT_ACTIONS = (("Freeze up to here", "freeze_up_to"), ("Unfreeze from here", "unfreeze_from"),
                   ("Freeze only this", "freeze_only"))


def _row(*widgets: QWidget) -> QWidget:
    """Widgets kept side by side (one item of the wrapping header)."""
    box = QWidget()
    lay = QHBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        lay.addWidget(w)
    return box


def _percent(part: int, whole: int) -> str:
    if not whole:
        return "0%"
    p = 100.0 * part / whole
    return "<0.1%" if 0 < p < 0.1 else f"{p:.1f}%"


def _rows_to_blocks(checklist: cl.Checklist) -> set[str]:
    """The rows a new tree opens: down to the blocks and the head, the rows a person freezes or thaws first."""
    opened: set[str] = set()
    for path in (*checklist.blocks, *checklist.head_paths):
        while path:
            path = path.rpartition(".")[0]
            opened.add(path)
    return opened


class FreezePanel(QWidget):
    """Edits a project's [freeze] section over the checklist of one model (a meta-device skeleton is enough)."""

    changed = Signal()
    suggest_requested = Signal()  # the Suggest button: the window measures and shows `advice`

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = FreezeSettings()
        self._train = TrainSettings()  # epochs and rates, for the schedule's timeline
        self._read_only = False
        self._stage_shown = 0  # the schedule's stage the tree shows during a run
        self._error = ""  # the engine's problem with the bound settings (e.g. names this model lacks)
        self._build()
        self._show_settings()

    @property
    def checklist(self) -> cl.Checklist | None:
        return self.tree_model.checklist

    # ------------------------------------------------------------ layout

    def _build(self) -> None:
        self.presets = QButtonGroup(self)
        self.preset_buttons: dict[str, QRadioButton] = {}
        top = FlowLayout()  # wraps onto a second line on a narrow screen
        top.addWidget(QLabel("Preset:"))
        for key, (label, tip) in PRESETS.items():
            button = named(QRadioButton(label), f"preset_{key}", f"Preset: {label}")
            button.setToolTip(tip)
            self.presets.addButton(button)
            self.preset_buttons[key] = button
            if key == "last_blocks":  # "Last [N] of M blocks" stays on one line
                self.last_blocks = named(QSpinBox(), "lastBlocks", "Number of last blocks to train")
                self.last_blocks.setRange(0, 1000)
                self.last_blocks.setToolTip(tip)
                self.last_blocks.setKeyboardTracking(False)
                self.blocks_label = QLabel("blocks")
                top.addWidget(_row(button, self.last_blocks, self.blocks_label))
            else:
                top.addWidget(button)
            button.toggled.connect(lambda on, k=key: on and self._preset_chosen(k))
        self.last_blocks.valueChanged.connect(self._last_blocks_changed)

        self.bn_policy = named(QComboBox(), "bnPolicy", "Frozen BatchNorm statistics")
        for value, label, tip in BN_CHOICES:
            self.bn_policy.addItem(label, value)
            self.bn_policy.setItemData(self.bn_policy.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.bn_policy.setToolTip("What BatchNorm layers inside frozen parts do with their running statistics.")
        self.bn_policy.currentIndexChanged.connect(self._bn_changed)
        top.addWidget(_row(QLabel("Frozen BatchNorm:"), self.bn_policy))
        self.suggest_button = named(QPushButton("Suggest"), "suggestFreeze", "Suggest where to cut")
        self.suggest_button.setToolTip("Measure how well the features at each cut point fit your classes and "
                                       "suggest a preset and learning rates")
        self.suggest_button.clicked.connect(self.suggest_requested)
        top.addWidget(self.suggest_button)
        self.read_only_label = QLabel("Read-only while a run is going")
        self.read_only_label.setStyleSheet("color: #8a5a00; font-weight: bold;")
        self.read_only_label.setVisible(False)
        top.addWidget(self.read_only_label)

        self.tree_model = LayerTreeModel(self)
        self.tree_model.edited.connect(self._tree_edited)
        self.tree = named(LayerTreeView(), "layerTree", "Layer checklist")
        self.tree.setModel(self.tree_model)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.tree.header().setStretchLastSection(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        fm = QFontMetrics(self.font())
        self._widths = {NAME: fm.horizontalAdvance("encoder_layer_11") + 60,  # the least a name gets
                        TYPE: fm.horizontalAdvance("Conv2dNormActivation") + 16,
                        PARAMS: fm.horizontalAdvance("000,000,000") + 16,
                        TRAINABLE_COLUMN: fm.horizontalAdvance("\u2744 partly") + 40,
                        ACTIVITY: fm.horizontalAdvance("Learns") + 22}
        self.tree.viewport().installEventFilter(self)

        self.advice = AdviceColumn()  # the advisor's bars per cut point, beside the tree
        self.advice.block_clicked.connect(self.show_module)
        self.schedule = SchedulePane()
        self.schedule.module_clicked.connect(self.show_module)
        self.schedule.preset_chosen.connect(self._schedule_chosen)
        self.schedule.boundary_moved.connect(self._boundary_moved)
        self.timeline = self.schedule.timeline
        beside = QWidget()  # the tree, the advisor's column beside it
        row = QHBoxLayout(beside)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.tree, 1)
        row.addWidget(self.advice)
        middle = named(QSplitter(Qt.Orientation.Vertical), "freezeSplitter", "Layer checklist and timeline")
        middle.setChildrenCollapsible(False)
        middle.addWidget(beside)
        middle.addWidget(self.schedule)
        middle.setStretchFactor(0, 1)
        middle.setStretchFactor(1, 0)

        self.summary = WrappingLabel()  # a long error wraps instead of widening the window
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        legend = QLabel(f'<span style="color:{FROZEN_COLOUR.name()}">\u25a0</span> frozen '
                        f'<span style="color:{SLOW_COLOUR.name()}">\u25a0</span><span style="color:'
                        f'{FAST_COLOUR.name()}">\u25a0</span> trainable, slow to fast')
        legend.setToolTip("Colours of the timeline under the tree: a lane per block, input at the top, epochs across; "
                          "trainable spans darker the faster they learn")
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(legend)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(middle, 1)
        layout.addLayout(bottom)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if watched is self.tree.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return False

    def _fit_columns(self) -> None:
        """Share the tree's width: the numbers keep theirs, the type column gives way (down to a few letters,
        elided) before the layer names go below a readable width; past that the tree scrolls sideways."""
        w, header = self._widths, self.tree.header()
        learning = bool(self.tree_model.activity)  # which layers learn takes the type's place while it is shown
        self.tree.setColumnHidden(ACTIVITY, not learning)
        self.tree.setColumnHidden(TYPE, learning)
        fixed = w[PARAMS] + w[TRAINABLE_COLUMN] + (w[ACTIVITY] if learning else 0)
        available = self.tree.viewport().width()
        for column in (PARAMS, TRAINABLE_COLUMN, ACTIVITY):
            header.resizeSection(column, w[column])
        if learning:
            header.resizeSection(NAME, max(w[NAME], available - fixed))
            return
        type_width = max(70, min(w[TYPE], available - fixed - w[NAME]))
        header.resizeSection(TYPE, type_width)
        header.resizeSection(NAME, max(w[NAME], available - fixed - type_width))

    # ------------------------------------------------------------ the API the main window uses

    def set_checklist(self, checklist: cl.Checklist | None, head_kept: bool = False,
                      reset_misfit: bool = False) -> str | None:
        """Show this model's checklist (None clears the tree) with the bound settings on it; the rows open, the
        current one and the scroll position stay where the same module paths are still there. With
        `reset_misfit` (the person changed the architecture), a custom plan that does not fit this model is
        reset to the default preset; what was done is returned in words (else None)."""
        view = self.tree.view_state()
        self.tree_model.head_word = "kept" if head_kept else "new"
        self.tree_model.set_checklist(checklist)
        note = None
        if checklist is not None:
            self.tree.restore_view(view, _rows_to_blocks(checklist))
            if reset_misfit:
                note = checklist.fit(self._settings)  # loads the settings, reset or not
        self._load_settings(load=not reset_misfit)
        return note

    def set_freeze_settings(self, settings: FreezeSettings, train: TrainSettings | None = None) -> None:
        """Bind a project's [freeze] section: show it, and write every later edit into this object. `train` (its
        [train] section, read only) gives the timeline its epochs and rates."""
        self._settings = settings
        if train is not None:
            self._train = train
        self._load_settings()

    def current_plan(self) -> FreezePlan | None:
        """The plan the ticks show; None until a model is set."""
        c = self.checklist
        return c.plan(self._settings.train_frozen_bn) if c is not None else None

    def show_problems(self, found: list[ProjectError]) -> None:
        """The engine's problems with the [freeze] section (`engine.preflight`), shown in the summary line."""
        self._error = "; ".join(str(e) for e in found if e.key.startswith("freeze."))
        self._refresh_summary()
        self._refresh_schedule()  # after any edit: the epochs or the rates may have changed

    def set_read_only(self, read_only: bool) -> None:
        """Block every edit (during a run) while keeping the tree scrollable; says so visibly."""
        self._read_only = read_only
        for w in (*self.preset_buttons.values(), self.last_blocks, self.bn_policy, self.suggest_button):
            w.setEnabled(not read_only)
        self.schedule.set_read_only(read_only)
        self._stage_shown = 0
        if read_only:  # a run starts: the last run's activity goes
            self._clear_activity()
        elif self.checklist is not None:  # the run is over: the project's own first stage again
            self._load_settings()
        self.tree_model.set_read_only(read_only)
        self.read_only_label.setVisible(read_only)
        self.tree.setStyleSheet("QTreeView { background: #eeeeee; }" if read_only else "")

    def is_read_only(self) -> bool:
        return self._read_only

    def show_now(self, epochs_done: float | None) -> None:
        """Where a run is, in epochs, as a line on the timeline, and the tree shows the layers its stage trains
        (None: no run; the tree shows the project's first stage again)."""
        self.timeline.set_now(epochs_done)
        shown = self.timeline.schedule
        if epochs_done is None or shown is None or self.checklist is None:
            return
        stage = shown.stage_at(min(int(epochs_done), self._train.epochs - 1))
        if stage.index != self._stage_shown:
            self._stage_shown = stage.index
            self.tree_model.show_change(lambda c: c.set_frozen(stage.plan.is_frozen))
            self._refresh_summary()

    def show_activity(self, event: LayerActivity) -> None:
        """Which layers are learning, in the tree's last column (per block: log10 of the update ratio)."""
        c = self.checklist
        if c is None:
            return
        lanes = schedule.Lanes(c)
        rows = {}
        for name, trained, grad, ratio in zip(event.blocks, event.trained, event.grad_norms, event.update_ratios,
                                              strict=True):
            if name in lanes.names:
                path = lanes.paths[lanes.names.index(name)]
                if c.has(path):
                    rows[c.index(path)] = (trained, ratio, grad, event.global_step)
        self.tree_model.set_activity(rows)
        self._fit_columns()

    def show_module(self, path: str) -> None:
        """Scroll the tree to a module (expanding its parents) and select it."""
        if self.tree_model.has_path(path):
            index = self.tree_model.index_of_path(path)
            self.tree.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
            self.tree.setCurrentIndex(index)

    # ------------------------------------------------------------ settings <-> checklist

    def _load_settings(self, load: bool = True) -> None:
        """Show the bound settings on the checklist (no `changed`: nothing was edited); `load=False`: the
        checklist has them already."""
        c = self.checklist
        if c is not None:
            if load:
                c.load(self._settings)  # a plan that does not fit is the engine's to report (show_problems)
            self.tree_model.repaint_all()
        n_blocks = len(c.blocks) if c is not None else 0
        self.last_blocks.setMaximum(max(n_blocks, self._settings.last_blocks, 1))
        self.blocks_label.setText(f"of {n_blocks} blocks" if n_blocks else "blocks")
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
        self._refresh_schedule()

    def _edited(self) -> None:
        self._clear_activity()  # measured under the plan before this edit
        self._show_settings()
        self.changed.emit()

    def _clear_activity(self) -> None:
        if self.tree_model.activity:
            self.tree_model.set_activity({})
            self._fit_columns()

    def _preset_chosen(self, preset: str) -> None:
        if self._read_only or preset == "custom":
            return
        self._settings.preset = preset
        self._settings.frozen = []
        self.tree_model.show_change(lambda c: c.apply_preset(preset, self._settings.last_blocks))
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

    def _schedule_chosen(self, key: str) -> None:
        """A schedule preset: the stages (and the first stage's preset) the engine gives for this model."""
        c = self.checklist
        if self._read_only or c is None:
            return
        values = schedule.preset(key, c, self._train.epochs)
        for name, value in values.items():
            setattr(self._settings, name, value)
        if "preset" in values:
            self.tree_model.show_change(lambda ch: ch.apply_preset(values["preset"], self._settings.last_blocks))
        self._edited()

    def _boundary_moved(self, index: int, start: int) -> None:
        if self._read_only:
            return
        self._settings.stages = schedule.moved(self._settings.stages, index, start)
        self._edited()

    def _tree_edited(self) -> None:
        self.checklist.store(self._settings)
        self._edited()

    # ------------------------------------------------------------ views of the state

    def _refresh_summary(self) -> None:
        c = self.checklist
        if c is None:
            self.summary.setText("No model yet: choose an architecture.")
            return
        trainable, total, frozen, layers = c.summary()
        counts = ("? / ? parameters" if total is None else
                  f"{trainable:,} / {total:,} parameters ({_percent(trainable, total)})")
        text = f"Trainable {counts} \u00b7 {frozen} of {layers} layers frozen"
        if self._error:
            text += f" \u00b7 {self._error}"
        self.summary.setText(text)
        self.summary.setToolTip(cl.UNKNOWN_COUNT if total is None else "")
        self.summary.setStyleSheet("color: #b00020;" if self._error else "")

    def _refresh_schedule(self) -> None:
        self.schedule.show_schedule(self.checklist, self._settings, self._train)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        if not index.isValid():
            return
        path = self.tree_model.path_of(index)
        editable = not self._read_only and self.checklist.can_edit(self.checklist.index(path))
        menu = QMenu(self)
        menu.setObjectName("layerMenu")
        for label, method in CONTEXT_ACTIONS:
            item = menu.addAction(label)
            item.setEnabled(editable)
            item.triggered.connect(lambda _=False, m=method: getattr(self.tree_model, m)(path))
        menu.exec(self.tree.viewport().mapToGlobal(pos))
