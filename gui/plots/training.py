"""Live training plots: loss, accuracy, learning rate and images/s, which layers learn (log10 of each block's
update ratio over the steps, with the 1e-3 rule of thumb marked), and one line under them for the value under the
mouse.

Curves are created once and fed from growing, preallocated numpy buffers; a QTimer redraws at most
``MAX_REDRAWS_PER_SECOND`` times a second, one plot per tick in turn, and only a plot with something new (or
whose view moved), never once per batch. Each redraw hands pyqtgraph the min/max of about one bucket per pixel of the visible range
(`Series.decimated`), so its cost does not grow with the run: 10^6 batches redraw as fast as 10^3.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

from engine.events import BatchEnded, EpochEnded, LayerActivity
from gui.plots.plot import Plot

MAX_REDRAWS_PER_SECOND = 15  # over all the plots, one per tick: each a few times a second
SMOOTHING_WINDOW = 50  # the smoothed training loss averages about this many batches, or one epoch's if fewer
HEALTHY_RATIO = -3.0  # log10 of the update ratio that is about right (Karpathy's rule of thumb)

pg.setConfigOptions(antialias=False, background="w", foreground="k")


class ReadoutLabel(QLabel):
    """One line of text, elided: a fixed height, and a width the text never asks for, so that no read-out can
    widen the window or move the plots."""

    def __init__(self) -> None:
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().height() + 6)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.WindowText, QColor(85, 85, 85))
        self.setPalette(palette)

    def paintEvent(self, event) -> None:
        rect = self.contentsRect().adjusted(6, 0, -6, 0)
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)


class TrainingPlots(QWidget):
    """Four plots fed by the worker's signals; call `add_batches` / `add_epoch` (and `add_history` for a continued
    run's earlier epochs), the timer does the drawing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.readout_label = ReadoutLabel()
        self.loss = Plot("Loss", "step", "loss", self.readout_label.setText)
        self.accuracy = Plot("Accuracy", "epoch", "accuracy", self.readout_label.setText, legend_corner=(1, 1),
                             percent=True)
        self.lr = Plot("Learning rate", "step", "head lr", self.readout_label.setText, legend=False)
        self.speed = Plot("Throughput", "step", "images/s", self.readout_label.setText, legend=False)
        self.activity = Plot("Which layers learn", "step", "log10 update ratio", self.readout_label.setText,
                             legend=False)
        self.plots = (self.loss, self.accuracy, self.lr, self.speed, self.activity)
        for i, plot in enumerate(self.plots[:4]):
            plot.widget.setMinimumSize(220, 150)
            layout.addWidget(plot.widget, i // 2, i % 2)
        self.activity.widget.setMinimumSize(220, 120)
        layout.addWidget(self.activity.widget, 2, 0, 1, 2)
        layout.addWidget(self.readout_label, 3, 0, 1, 2)
        layout.setRowStretch(0, 3)
        layout.setRowStretch(1, 3)
        layout.setRowStretch(2, 2)
        guide = pg.InfiniteLine(pos=HEALTHY_RATIO, angle=0, pen=pg.mkPen((44, 160, 44), style=Qt.PenStyle.DashLine),
                                label="1e-3", labelOpts={"position": 0.05, "color": (44, 120, 44)})
        self.activity.widget.addItem(guide)

        self.train_loss_raw = self.loss.add("train (batch)", (180, 200, 230), width=1)
        self.train_loss = self.loss.add("train (smoothed)", (31, 119, 180), width=2)
        self.val_loss = self.loss.add("validation", (214, 39, 40), width=2, symbol="o")
        self.train_acc = self.accuracy.add("train", (31, 119, 180), width=2, symbol="o")
        self.val_acc = self.accuracy.add("validation", (214, 39, 40), width=2, symbol="o")
        self.lr_series = self.lr.add("head lr", (44, 160, 44), width=2)
        self.speed_series = self.speed.add("images/s", (148, 103, 189), width=1.5)

        self._ema, self._ema_weight = 0.0, 0.0
        self._steps_per_epoch = 0
        self._history: list[EpochEnded] = []  # earlier epochs waiting for the steps per epoch (the first batch)
        self._turn = 0  # the plot the timer looks at first on its next tick
        self.redraws = 0  # plots the timer actually redrew (for the benchmarks)
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / MAX_REDRAWS_PER_SECOND) + 1)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def clear(self) -> None:
        for plot in self.plots:
            plot.clear()
        self.activity.drop_curves()  # one per block of the last run's model
        self._ema, self._ema_weight = 0.0, 0.0
        self._steps_per_epoch = 0
        self._history = []

    def span_run(self, epochs: int, steps_per_epoch: int) -> None:
        """A run starts: its plots span its whole length (`Plot.span_x`)."""
        for plot in (self.loss, self.lr, self.speed, self.activity):
            plot.span_x(0, epochs * steps_per_epoch)
        self.accuracy.span_x(1, epochs)

    def add_batches(self, events: list[BatchEnded]) -> None:
        if not events:
            return
        steps = np.fromiter((e.global_step for e in events), dtype=np.float64, count=len(events))
        losses = np.fromiter((e.loss for e in events), dtype=np.float64, count=len(events))
        smooth = self._smooth(losses, events[-1].steps_per_epoch)
        self._steps_per_epoch = events[-1].steps_per_epoch
        if self._history:
            self._place_history()
        self.train_loss_raw.extend(steps, losses)
        self.train_loss.extend(steps, smooth)
        self.lr_series.extend(steps, [e.lr for e in events])
        self.speed_series.extend(steps, [e.images_per_second for e in events])

    def _smooth(self, losses: np.ndarray, steps_per_epoch: int) -> np.ndarray:
        """Debiased exponential moving average (as TensorBoard's): no pull toward the first batch's loss, and a
        window of one epoch in short runs, where 50 batches would lag the real loss by whole epochs."""
        beta = 1.0 - 1.0 / max(2, min(SMOOTHING_WINDOW, steps_per_epoch))
        out = np.empty_like(losses)
        for i, value in enumerate(losses):
            if np.isfinite(value):
                self._ema = beta * self._ema + (1.0 - beta) * value
                self._ema_weight = beta * self._ema_weight + (1.0 - beta)
            out[i] = self._ema / self._ema_weight if self._ema_weight else np.nan
        return out

    def add_epoch(self, event: EpochEnded) -> None:
        step = event.epoch * self._steps_per_epoch if self._steps_per_epoch else event.epoch
        self.val_loss.extend([step], [event.val_loss])
        self.train_acc.extend([event.epoch], [100 * event.train_accuracy])
        self.val_acc.extend([event.epoch], [100 * event.val_accuracy])

    def add_activity(self, event: LayerActivity) -> None:
        """Each trained block's update ratio at this step, a curve per block coloured from input to head; a block
        gets its curve when it first trains (one unfrozen later by a schedule, then)."""
        n = len(event.blocks)
        for k, (name, trained, ratio) in enumerate(zip(event.blocks, event.trained, event.update_ratios, strict=True)):
            if not trained or ratio <= 0:
                continue
            if name not in self.activity.curves:
                self.activity.add(name, pg.colormap.get("viridis").map(k / max(1, n - 1), mode="qcolor"), width=1.5)
            self.activity.curves[name][1].extend([event.global_step], [math.log10(ratio)])

    def add_history(self, epochs: list[EpochEnded]) -> None:
        """Draw a continued run's earlier epochs (its checkpoint's history), right after `clear`, before its
        first batch: the accuracies now; the losses, learning rate and throughput, which are drawn against
        steps, with the first batch, which tells the steps per epoch. There are no batches for those epochs:
        each epoch's mean training loss sits mid-epoch on the smoothed curve, the rest at the epoch's end."""
        self.train_acc.extend([e.epoch for e in epochs], [100 * e.train_accuracy for e in epochs])
        self.val_acc.extend([e.epoch for e in epochs], [100 * e.val_accuracy for e in epochs])
        self._history = list(epochs)

    def show_run(self, epochs: list[EpochEnded], steps_per_epoch: int | None) -> None:
        """Show a past run's curves (its metrics.csv, `engine.runs.catalog.history`) in place of the plots' own:
        per epoch, the losses against steps as `add_history` places them (epochs as steps when the steps per
        epoch are unknown)."""
        self.clear()
        self.add_history(epochs)
        self._steps_per_epoch = steps_per_epoch or 1
        if self._history:
            self._place_history()
        self.redraw()

    def _place_history(self) -> None:
        spe, epochs = self._steps_per_epoch, np.array([e.epoch for e in self._history], dtype=np.float64)
        self.train_loss.extend((epochs - 0.5) * spe, [e.train_loss for e in self._history])
        self.val_loss.extend(epochs * spe, [e.val_loss for e in self._history])
        self.lr_series.extend(epochs * spe, [e.lr for e in self._history])
        self.speed_series.extend(epochs * spe, [e.images_per_second for e in self._history])
        self._history = []

    def redraw(self) -> None:
        """Redraw every plot now (the timer instead redraws one plot per tick)."""
        for plot in self.plots:
            plot.redraw()

    def _tick(self) -> None:
        """Redraw the next plot, in turn, that has something new: one plot's repaint per tick keeps each pause
        of the event loop short while training (four at once measured p99 gaps of 140-190 ms)."""
        n = len(self.plots)
        for k in range(n):
            plot = self.plots[(self._turn + k) % n]
            if plot.pending():
                plot.redraw()
                self.redraws += 1
                self._turn = (self._turn + k + 1) % n
                return
