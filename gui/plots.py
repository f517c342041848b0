"""Live training plots: loss, accuracy, learning rate and images/s.

Curves are created once and fed from growing, preallocated numpy buffers; a QTimer redraws at most
``MAX_REDRAWS_PER_SECOND`` times a second, and only when something new arrived, never once per batch.
Peak downsampling and clip-to-view keep runs of 100,000+ batches smooth.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

from engine.events import BatchEnded, EpochEnded

MAX_REDRAWS_PER_SECOND = 30
SMOOTHING = 0.98  # exponential moving average of the per-batch training loss

pg.setConfigOptions(antialias=False, background="w", foreground="k")


class Series:
    """An x/y buffer that doubles its capacity when full; `x`/`y` are views of the filled part."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def extend(self, xs, ys) -> None:
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        need = self.n + len(xs)
        if need > len(self._x):
            cap = max(need, 2 * len(self._x))
            self._x = np.resize(self._x, cap)
            self._y = np.resize(self._y, cap)
        self._x[self.n : need] = xs
        self._y[self.n : need] = ys
        self.n = need

    def clear(self) -> None:
        self.n = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]


class _Plot:
    """One pyqtgraph plot with a legend, axis labels and a crosshair read-out of the value under the mouse."""

    def __init__(self, widget: pg.PlotWidget, title: str, x_label: str, y_label: str) -> None:
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
        item.addLegend(offset=(-10, 10))
        item.enableAutoRange()  # the person can pan/zoom to override; the "A" button brings it back
        self.curves: dict[str, tuple[pg.PlotDataItem, Series]] = {}
        self._vline = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine))
        self._hline = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine))
        for line in (self._vline, self._hline):
            line.setVisible(False)
            item.addItem(line, ignoreBounds=True)
        self.readout = ""
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
        for curve, series in self.curves.values():
            curve.setData(series.x, series.y)

    def clear(self) -> None:
        for curve, series in self.curves.values():
            series.clear()
            curve.setData([], [])
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
        self.accuracy = _Plot(widgets[1], "Accuracy", "epoch", "accuracy")
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

        self._ema: float | None = None
        self._steps_per_epoch = 0
        self._dirty = False
        self.redraws = 0  # how many times the timer actually redrew (for the benchmarks)
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / MAX_REDRAWS_PER_SECOND) + 1)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def clear(self) -> None:
        for plot in self.plots:
            plot.clear()
        self._ema = None
        self._steps_per_epoch = 0
        self._dirty = False

    def add_batches(self, events: list[BatchEnded]) -> None:
        if not events:
            return
        steps = np.fromiter((e.global_step for e in events), dtype=np.float64, count=len(events))
        losses = np.fromiter((e.loss for e in events), dtype=np.float64, count=len(events))
        smooth = np.empty_like(losses)
        ema = losses[0] if self._ema is None else self._ema
        for i, value in enumerate(losses):
            ema = SMOOTHING * ema + (1.0 - SMOOTHING) * value if np.isfinite(value) else ema
            smooth[i] = ema
        self._ema = float(ema)
        self._steps_per_epoch = events[-1].steps_per_epoch
        self.train_loss_raw.extend(steps, losses)
        self.train_loss.extend(steps, smooth)
        self.lr_series.extend(steps, [e.lr for e in events])
        self.speed_series.extend(steps, [e.images_per_second for e in events])
        self._dirty = True

    def add_epoch(self, event: EpochEnded) -> None:
        step = event.epoch * self._steps_per_epoch if self._steps_per_epoch else event.epoch
        self.val_loss.extend([step], [event.val_loss])
        self.train_acc.extend([event.epoch], [event.train_accuracy])
        self.val_acc.extend([event.epoch], [event.val_accuracy])
        self._dirty = True

    def redraw(self) -> None:
        for plot in self.plots:
            plot.redraw()
        self.redraws += 1
        self._dirty = False

    def _tick(self) -> None:
        if self._dirty:
            self.redraw()
