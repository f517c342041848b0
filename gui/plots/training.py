"""Live training plots: loss, accuracy, learning rate and images/s.

Curves are created once and fed from growing, preallocated numpy buffers; a QTimer redraws at most
``MAX_REDRAWS_PER_SECOND`` times a second, one plot per tick in turn, and only a plot with something new (or
whose view moved), never once per batch. Each redraw hands pyqtgraph the min/max of about one bucket per pixel of the visible range
(`Series.decimated`), so its cost does not grow with the run: 10^6 batches redraw as fast as 10^3.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

from engine.events import BatchEnded, EpochEnded
from gui.plots.series import Series

MAX_REDRAWS_PER_SECOND = 30
SMOOTHING_WINDOW = 50  # the smoothed training loss averages about this many batches, or one epoch's if fewer
MIN_BUCKETS = 200  # buckets per curve when the plot has no width yet (hidden)

pg.setConfigOptions(antialias=False, background="w", foreground="k")


class _Plot:
    """One pyqtgraph plot with a legend, axis labels and a crosshair read-out of the value under the mouse."""

    def __init__(self, widget: pg.PlotWidget, title: str, x_label: str, y_label: str,
                 legend_offset: tuple[int, int] = (-10, 10)) -> None:
        """`legend_offset`: corner of the legend (pyqtgraph's sign convention: (-10, 10) is top right, away from
        falling curves; (-10, -10) bottom right, away from rising ones)."""
        self.widget = widget
        self.title = title
        item = widget.getPlotItem()
        item.setTitle(title)
        item.setLabel("bottom", x_label)
        item.setLabel("left", y_label)
        item.getAxis("left").enableAutoSIPrefix(False)  # no "(x0.001)" scaling of accuracy or lr values
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        item.addLegend(offset=legend_offset)
        item.enableAutoRange()  # the person can pan/zoom to override; the "A" button brings it back
        self.curves: dict[str, tuple[pg.PlotDataItem, Series]] = {}
        self._vline = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine))
        self._hline = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine))
        for line in (self._vline, self._hline):
            line.setVisible(False)
            item.addItem(line, ignoreBounds=True)
        self.readout = ""
        self.stale = False  # the view moved so that some curve needs other points
        self._drawn: dict[str, tuple[int, int, int]] = {}  # curve -> (start, stop, buckets) it was last given
        item.vb.sigXRangeChanged.connect(self._view_moved)
        item.vb.sigResized.connect(self._view_moved)
        self._proxy = pg.SignalProxy(widget.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)

    def add(self, name: str, color, width: float = 1.5, symbol: str | None = None) -> Series:
        series = Series()
        curve = self.widget.getPlotItem().plot(
            [], [], name=name, pen=pg.mkPen(color, width=width),
            symbol=symbol, symbolSize=6, symbolBrush=color, symbolPen=None,
        )
        self.curves[name] = (curve, series)
        return series

    def redraw(self) -> None:
        """Give each curve whose visible points changed its decimated points (curves with nothing new are
        left alone: pyqtgraph's `setData` is the costly part)."""
        for name, (curve, series) in self.curves.items():
            window = self._window(series)
            if self._drawn.get(name) != window:
                idx = series.decimated(*window)
                curve.setData(series.x[idx], series.y[idx])
                self._drawn[name] = window
        self.stale = False

    def _window(self, series: Series) -> tuple[int, int, int]:
        """(start, stop, buckets): the index range in view, one point of margin each side (all of it while
        the x axis auto-ranges), and the plot's width in pixels."""
        vb = self.widget.getPlotItem().vb
        buckets = max(int(vb.width()), MIN_BUCKETS)
        if vb.autoRangeEnabled()[0] or not series.n:
            return 0, series.n, buckets
        x0, x1 = vb.viewRange()[0]
        start = int(np.searchsorted(series.x, x0)) - 1
        stop = int(np.searchsorted(series.x, x1, side="right")) + 1
        return max(start, 0), min(stop, series.n), buckets

    def pending(self) -> bool:
        """True when some curve has points to show that it was not given yet (new data, or the view moved)."""
        return self.stale or any(
            self._drawn.get(name) != self._window(series) for name, (_, series) in self.curves.items())

    def _view_moved(self, *_) -> None:
        self.stale = self.pending()

    def clear(self) -> None:
        for curve, series in self.curves.values():
            series.clear()
            curve.setData([], [])
        self._drawn.clear()
        self.readout = ""
        self.widget.getPlotItem().setTitle(self.title)
        self.widget.getPlotItem().enableAutoRange()

    def show_value_at(self, x: float, y: float) -> str:
        """Move the crosshair to (x, y) in data coordinates and write each curve's nearest value in the title."""
        self._vline.setPos(x)
        self._hline.setPos(y)
        self._vline.setVisible(True)
        self._hline.setVisible(True)
        parts = [f"x={x:.4g}"]
        for name, (_, series) in self.curves.items():
            if series.n:
                i = int(np.clip(np.searchsorted(series.x, x), 0, series.n - 1))
                if i > 0 and abs(series.x[i - 1] - x) < abs(series.x[i] - x):
                    i -= 1
                parts.append(f"{name}={series.y[i]:.4g}")
        self.readout = "  ".join(parts)
        self.widget.getPlotItem().setTitle(f"{self.title}   <span style='color:#555'>{self.readout}</span>")
        return self.readout

    def _mouse_moved(self, args) -> None:
        pos = args[0]
        item = self.widget.getPlotItem()
        if item.sceneBoundingRect().contains(pos):
            point = item.vb.mapSceneToView(pos)
            self.show_value_at(point.x(), point.y())


class TrainingPlots(QWidget):
    """Four plots fed by the worker's signals; call `add_batches` / `add_epoch`, the timer does the drawing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        widgets = [pg.PlotWidget() for _ in range(4)]
        for i, w in enumerate(widgets):
            w.setMinimumSize(220, 150)
            layout.addWidget(w, i // 2, i % 2)
        self.loss = _Plot(widgets[0], "Loss", "step", "loss")
        self.accuracy = _Plot(widgets[1], "Accuracy", "epoch", "accuracy", legend_offset=(-10, -10))
        self.lr = _Plot(widgets[2], "Learning rate", "step", "lr")
        self.speed = _Plot(widgets[3], "Throughput", "step", "images/s")
        self.plots = (self.loss, self.accuracy, self.lr, self.speed)

        self.train_loss_raw = self.loss.add("train (batch)", (180, 200, 230), width=1)
        self.train_loss = self.loss.add("train (smoothed)", (31, 119, 180), width=2)
        self.val_loss = self.loss.add("validation", (214, 39, 40), width=2, symbol="o")
        self.train_acc = self.accuracy.add("train", (31, 119, 180), width=2, symbol="o")
        self.val_acc = self.accuracy.add("validation", (214, 39, 40), width=2, symbol="o")
        self.lr_series = self.lr.add("head lr", (44, 160, 44), width=2)
        self.speed_series = self.speed.add("images/s", (148, 103, 189), width=1.5)

        self._ema, self._ema_weight = 0.0, 0.0
        self._steps_per_epoch = 0
        self._turn = 0  # the plot the timer looks at first on its next tick
        self.redraws = 0  # plots the timer actually redrew (for the benchmarks)
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / MAX_REDRAWS_PER_SECOND) + 1)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def clear(self) -> None:
        for plot in self.plots:
            plot.clear()
        self._ema, self._ema_weight = 0.0, 0.0
        self._steps_per_epoch = 0

    def add_batches(self, events: list[BatchEnded]) -> None:
        if not events:
            return
        steps = np.fromiter((e.global_step for e in events), dtype=np.float64, count=len(events))
        losses = np.fromiter((e.loss for e in events), dtype=np.float64, count=len(events))
        smooth = self._smooth(losses, events[-1].steps_per_epoch)
        self._steps_per_epoch = events[-1].steps_per_epoch
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
        self.train_acc.extend([event.epoch], [event.train_accuracy])
        self.val_acc.extend([event.epoch], [event.val_accuracy])

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
