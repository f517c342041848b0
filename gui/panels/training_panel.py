"""The training panel: the ``[train]`` section of the project (schedule, loss, device, seed, output). "Find..." by the
learning rate asks the window for the learning-rate finder (`find_lr_requested`)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.device import available_devices
from gui.dialogs import choose_folder
from gui.naming import named
from gui.panels.fields import (
    ProjectPanel,
    add_items,
    add_row,
    form_layout,
    format_number,
    parse_float,
    parse_int,
    path_row,
)

OPTIMIZERS = [("AdamW", "adamw"), ("SGD", "sgd")]
SCHEDULERS = [("Cosine decay", "cosine"), ("One-cycle", "onecycle"), ("Step decay", "step"),
              ("Constant", "none")]


class TrainingPanel(ProjectPanel):
    find_lr_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        f = self.fields
        outer = QVBoxLayout(self)

        sched = QGroupBox("Schedule")
        form = form_layout(sched)
        self.epochs = add_row(form, "Epochs", named(QLineEdit(), "epochs", "Epochs"), "Passes over the training images (1 or more).")
        self.batch_size = add_row(form, "Batch size", named(QLineEdit(), "batchSize", "Batch size"), "Images per step; lower it if memory runs out.")
        self.optimizer = add_row(form, "Optimizer", add_items(named(QComboBox(), "optimizer", "Optimizer"), OPTIMIZERS))
        self.lr = named(QLineEdit(), "learningRate", "Learning rate")
        self.lr.setToolTip("Learning rate of the head, e.g. 0.001 or 1e-3.")
        self.find_lr = named(QPushButton("Find…"), "findLearningRate", "Find a learning rate")
        self.find_lr.setToolTip("The learning-rate finder: a short sweep from tiny to huge rates suggests one "
                                "(nothing of it is kept)")
        self.find_lr.clicked.connect(self.find_lr_requested)
        lr_row = QHBoxLayout()
        lr_row.addWidget(self.lr, 1)
        lr_row.addWidget(self.find_lr)
        form.addRow("Learning rate", lr_row)
        self.backbone_lr_mult = add_row(
            form, "Backbone LR ×", named(QLineEdit(), "backboneLrMult", "Backbone learning-rate multiplier"),
            "Unfrozen backbone layers learn at this multiple of the learning rate (0.1 = ten times slower).")
        self.backbone_lr = QLabel()
        self.backbone_lr.setStyleSheet("color: palette(placeholder-text);")
        form.addRow("", self.backbone_lr)
        self.scheduler = add_row(form, "Scheduler", add_items(named(QComboBox(), "scheduler", "Scheduler"), SCHEDULERS))
        self.weight_decay = add_row(form, "Weight decay", named(QLineEdit(), "weightDecay", "Weight decay"), "L2 penalty, e.g. 1e-4; 0 turns it off.")
        outer.addWidget(sched)

        loss = QGroupBox("Loss and stopping")
        form = form_layout(loss)
        self.label_smoothing = add_row(form, "Label smoothing", named(QLineEdit(), "labelSmoothing", "Label smoothing"), "0 to just under 1; 0.1 is common.")
        self.class_weights = add_row(form, "", named(QCheckBox("Weight classes by inverse frequency"), "classWeights",
                                                         "Weight classes by inverse frequency"),
                                     "Helps when some classes have far fewer images than others.")
        self.early_stop_patience = add_row(
            form, "Early stopping", named(QLineEdit(), "earlyStopPatience", "Early stopping patience"),
            "Stop after this many epochs without a better validation accuracy; 0 = never stop early.")
        outer.addWidget(loss)

        hw = QGroupBox("Hardware and output")
        form = form_layout(hw)
        self.device = add_row(form, "Device", named(QComboBox(), "device", "Device"), "Where training runs; unavailable devices are greyed out.")
        self._fill_devices()
        self.amp = add_row(form, "", named(QCheckBox("Mixed precision (CUDA only)"), "amp", "Mixed precision"),
                           "float16 arithmetic on a CUDA GPU: faster, less memory. Ignored on CPU.")
        self.seed = add_row(form, "Seed", named(QLineEdit(), "seed", "Seed"), "Same seed, same split, same shuffling: repeatable runs.")
        self.out_dir = named(QLineEdit(), "outDir", "Output folder")
        self.out_dir.setToolTip("Each run writes a time-stamped folder inside this one.")
        self.browse_out = named(QPushButton("Browse…"), "browseOutDir", "Choose the output folder")
        self.browse_out.clicked.connect(self._browse_out_dir)
        form.addRow("Output folder", path_row(self.out_dir, self.browse_out))
        outer.addWidget(hw)
        outer.addStretch(1)

        for key, edit, parse in (
            ("epochs", self.epochs, parse_int), ("batch_size", self.batch_size, parse_int),
            ("lr", self.lr, parse_float), ("backbone_lr_mult", self.backbone_lr_mult, parse_float),
            ("weight_decay", self.weight_decay, parse_float), ("label_smoothing", self.label_smoothing, parse_float),
            ("early_stop_patience", self.early_stop_patience, parse_int), ("seed", self.seed, parse_int),
        ):
            f.line(f"train.{key}", edit, parse)
        f.line("train.out_dir", self.out_dir)
        f.combo("train.optimizer", self.optimizer)
        f.combo("train.scheduler", self.scheduler)
        f.combo("train.device", self.device)
        f.check_box("train.class_weights", self.class_weights)
        f.check_box("train.amp", self.amp)
        f.extra_widgets += [self.browse_out, self.find_lr]
        self.changed.connect(self._show_backbone_lr)

    def _fill_devices(self) -> None:
        self._devices = available_devices()
        names = {"auto": "Auto", "cpu": "CPU", "cuda": "CUDA", "mps": "MPS"}
        for key, text in self._devices.items():
            self.device.addItem(text or f"{names[key]} (not available here)", key)
            if text is None:
                self.device.model().item(self.device.count() - 1).setEnabled(False)

    def set_project(self, project) -> None:
        super().set_project(project)
        self._show_backbone_lr()

    def _show_backbone_lr(self) -> None:
        t = self.project.train if self.project else None
        self.backbone_lr.setText(
            f"unfrozen backbone layers learn at {format_number(t.lr * t.backbone_lr_mult)}" if t else "")

    def _browse_out_dir(self) -> None:
        start = self.project.resolve(self.out_dir.text()) if self.project and self.out_dir.text().strip() else None
        path = choose_folder(self, "Output folder for runs", start)
        if path:
            self.out_dir.setText(path)
            self.fields.commit("train.out_dir")
