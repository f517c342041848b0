"""The unfreezing schedule under the layer checklist: its presets in a row over the timeline.

It shows a project's schedule (`engine.model.schedule.Schedule` over the panel's checklist) and hands the person's
edits to the freeze panel as signals: a preset chosen, a stage's boundary moved. The panel writes them into the
project, so each is one undoable edit like any other.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QToolButton, QVBoxLayout, QWidget

from engine.model.checklist import Checklist
from engine.model.schedule import Schedule, start_range
from gui.flow_layout import FlowLayout
from gui.freeze.timeline import Boundary, Timeline
from gui.naming import named

PRESETS = {
    "none": ("None", "No schedule: the preset above from the first epoch to the last."),
    "fine_tune": ("fastai", "fastai's fine_tune: the head alone for an epoch, then everything at half the "
                            "rate, log-spaced down to 1/100 at the input."),
    "gradual": ("ULMFiT", "ULMFiT's gradual unfreezing: one more block each epoch from the top, each block "
                          "at 1/2.6 of the rate of the one above."),
    "backbone": ("Lightning", "Lightning's BackboneFinetuning: the head alone, then the backbone at 0.1x the "
                              "head's rate, doubling each epoch until it is equal."),
    "layer_decay": ("Layer decay", "timm's layer-wise decay: everything trains from the start, each block at 0.75 "
                                   "of the rate of the one above."),
}


class SchedulePane(QWidget):
    """Presets (`preset_chosen(key)`) over the `Timeline` (`boundary_moved(index, start)`, `module_clicked(path)`)."""

    preset_chosen = Signal(str)
    boundary_moved = Signal(int, int)
    module_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = FlowLayout()
        row.addWidget(QLabel("Schedule:"))
        self.buttons: dict[str, QToolButton] = {}
        for key, (label, tip) in PRESETS.items():
            button = named(QToolButton(), f"schedule_{key}", f"Schedule preset: {label}")
            button.setText(label)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, k=key: self.preset_chosen.emit(k))
            row.addWidget(button)
            self.buttons[key] = button
        self.timeline = named(Timeline(), "freezeTimeline",
                              "Freeze timeline: the blocks from input to head, the epochs across")
        self.timeline.boundary_moved.connect(self.boundary_moved)
        self.timeline.module_clicked.connect(self.module_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.timeline, 1)

    def show_schedule(self, checklist: Checklist | None, freeze: Any, train: Any) -> None:
        """Draw the stages of `freeze` (a [freeze] section) over `train.epochs` epochs; None: no model yet."""
        if checklist is None:
            self.timeline.set_schedule(None, train.epochs, [])
            return
        schedule = Schedule(checklist, freeze, train.lr, train.backbone_lr_mult)
        stages = freeze.stages
        boundaries = [Boundary(i, s["start"], *start_range(stages, i, train.epochs))
                      for i, s in enumerate(stages) if s["start"] > 0]
        self.timeline.set_schedule(schedule, train.epochs, boundaries)

    def set_read_only(self, read_only: bool) -> None:
        for button in self.buttons.values():
            button.setEnabled(not read_only)
        self.timeline.set_editable(not read_only)
