"""The layer checklist: presets, the BatchNorm policy, the layer tree, a freeze strip and a summary line.

The panel edits one project's [freeze] section through the engine's `Checklist`: presets are its flag
patterns, hand edits in the tree are its edits, and `Checklist.store` writes the ticks back as the preset they
equal (or as custom paths), so the window and ``python main.py train`` freeze the same tensors. Every edit is
written into the bound `FreezeSettings` before `changed` fires.
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
    QVBoxLayout,
    QWidget,
)

from engine.errors import ProjectError
from engine.model import checklist as cl
from engine.model.freezing import FreezePlan
from engine.project import FreezeSettings
from gui.flow_layout import FlowLayout
from gui.freeze.advice_bars import AdviceColumn
from gui.freeze.layer_tree import NAME, PARAMS, TRAINABLE_COLUMN, TYPE, LayerTreeModel
from gui.freeze.strip import FROZEN_COLOUR, HEAD_COLOUR, STATES, TRAINABLE_COLOUR, FreezeStrip, Segment
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
        self._read_only = False
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
                        TRAINABLE_COLUMN: fm.horizontalAdvance("\u2744 partly") + 40}
        self.tree.viewport().installEventFilter(self)

        self.strip = named(FreezeStrip(), "freezeStrip", "Freeze strip: the network from input to head")
        self.strip.module_clicked.connect(self.show_module)
        self.strip.mode_changed.connect(lambda _mode: self._refresh_strip())
        self.advice = AdviceColumn()  # the advisor's bars per cut point, beside the tree
        self.advice.block_clicked.connect(self.show_module)
        middle = QHBoxLayout()
        middle.addWidget(self.strip)
        middle.addWidget(self.tree, 1)
        middle.addWidget(self.advice)

        self.summary = WrappingLabel()  # a long error wraps instead of widening the window
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        legend = QLabel(" ".join(f'<span style="color:{c.name()}">\u25a0</span> {label}' for c, label in (
            (FROZEN_COLOUR, "frozen"), (TRAINABLE_COLOUR, "trainable"), (HEAD_COLOUR, "head"))))
        legend.setToolTip("Colours of the strip left of the tree (input at the top, head at the bottom)")
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(legend)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(middle, 1)
        layout.addLayout(bottom)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if watched is self.tree.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return False

    def _fit_columns(self) -> None:
        """Share the tree's width: the numbers keep theirs, the type column gives way (down to a few letters,
        elided) before the layer names go below a readable width; past that the tree scrolls sideways."""
        w, header = self._widths, self.tree.header()
        fixed = w[PARAMS] + w[TRAINABLE_COLUMN]
        available = self.tree.viewport().width()
        type_width = max(70, min(w[TYPE], available - fixed - w[NAME]))
        header.resizeSection(PARAMS, w[PARAMS])
        header.resizeSection(TRAINABLE_COLUMN, w[TRAINABLE_COLUMN])
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

    def set_freeze_settings(self, settings: FreezeSettings) -> None:
        """Bind a project's [freeze] section: show it, and write every later edit into this object."""
        self._settings = settings
        self._load_settings()

    def current_plan(self) -> FreezePlan | None:
        """The plan the ticks show; None until a model is set."""
        c = self.checklist
        return c.plan(self._settings.train_frozen_bn) if c is not None else None

    def show_problems(self, found: list[ProjectError]) -> None:
        """The engine's problems with the [freeze] section (`engine.preflight`), shown in the summary line."""
        self._error = "; ".join(str(e) for e in found if e.key.startswith("freeze."))
        self._refresh_summary()

    def set_read_only(self, read_only: bool) -> None:
        """Block every edit (during a run) while keeping the tree scrollable; says so visibly."""
        self._read_only = read_only
        for w in (*self.preset_buttons.values(), self.last_blocks, self.bn_policy, self.suggest_button):
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
        self._refresh_strip()

    def _edited(self) -> None:
        self._show_settings()
        self.changed.emit()

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

    def _refresh_strip(self) -> None:
        c = self.checklist
        if c is None:
            self.strip.set_segments([])
        elif self.strip.mode() == "params":
            self.strip.set_segments([Segment(path, float(n), STATES[state]) for path, n, state in c.segments()])
        else:
            self.strip.set_segments([Segment(path, 1.0, STATES[state]) for path, state in c.block_states()])

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
