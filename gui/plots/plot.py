"""One live plot: decimated curves, a legend that keeps off them, and a crosshair read-out of the value under the
mouse, shown outside the plot so that no text can resize it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt

from gui.plots.series import Series

MIN_BUCKETS = 200  # buckets per curve when the plot has no width yet (hidden)
LEGEND_MARGIN = 6  # pixels between the legend and the view's edge
CURVE_REACH = 4  # pixels a drawn curve reaches either side of its points (pen and symbol)
CORNERS = ((1, 0), (1, 1), (0, 0), (0, 1))  # legend places: (x, y) fractions of the view, top right first


class SteadyAxis(pg.AxisItem):
    """An axis (with its grid lines) that keeps its drawing while the range moves by less than a quarter of a
    pixel at either end: a live run extends the x range on every redraw, and regenerating the ticks, their
    labels and the grid was most of a redraw's cost (4-5 ms of ~12) though nothing visible changed.

    The drawing is kept as a pixmap (Qt's item cache): replaying pyqtgraph's recorded drawing (its text above
    all) was still 2.5-3 ms per axis on every repaint of the plot, i.e. ~60 ms when a new epoch repaints the five
    plots at once. pyqtgraph drops its recording (`picture`) in places that do not ask for a repaint (a resize),
    which went unnoticed while every repaint replayed it; with the cache each drop asks for one."""

    TOLERANCE_PX = 0.25

    def __init__(self, *args, **kwargs) -> None:
        self._drawn_range: tuple[float, float] | None = None
        super().__init__(*args, **kwargs)
        self.setCacheMode(pg.QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # The room for tick labels only grows: narrower labels gave the view more width, the legend's room then
        # another y range, whose wider labels took the width back, and so on at every repaint (the loss plot
        # flickered between two ranges ~40 times a second, measured in bench/gui_responsiveness.py).
        self.setStyle(autoReduceTextSpace=False)

    @property
    def picture(self):
        return self.__dict__.get("_picture")

    @picture.setter
    def picture(self, value) -> None:
        self.__dict__["_picture"] = value
        if value is None:
            self.update()

    def setRange(self, mn: float, mx: float) -> None:
        drawn = self._drawn_range
        length = self.width() if self.orientation in ("top", "bottom") else self.height()
        if self.picture is not None and drawn is not None and length > 0 and mx != mn:
            px = length / abs(mx - mn)
            if abs(mn - drawn[0]) * px < self.TOLERANCE_PX and abs(mx - drawn[1]) * px < self.TOLERANCE_PX:
                self.range = [mn, mx]
                return
        super().setRange(mn, mx)

    def paint(self, p, opt, widget) -> None:
        if self.picture is None:
            self._drawn_range = tuple(self.range)
        super().paint(p, opt, widget)


class PercentAxis(SteadyAxis):
    """Ticks that read as percentages (values are already 0-100)."""

    def tickStrings(self, values, scale, spacing):
        return [f"{v * scale:g}%" for v in values]


class Plot(QObject):
    """One pyqtgraph plot with a legend, axis labels and a crosshair read-out of the value under the mouse.

    The read-out goes to `report` (a fixed-size label under the plots), never into the plot's title: a longer
    title widened the plot past its cell until the next run."""

    def __init__(self, title: str, x_label: str, y_label: str, report: Callable[[str], None], *,
                 legend: bool = True, legend_corner: tuple[int, int] = (1, 0), percent: bool = False) -> None:
        """`legend`: one, for plots with more than one curve; `legend_corner`: the corner tried first when the y
        range is fixed ((1, 1), bottom right, for rising curves); `percent`: values are 0-100 %, and the y axis
        shows 0-100 % until the person zooms."""
        super().__init__()
        self.widget = pg.PlotWidget(axisItems={"left": (PercentAxis if percent else SteadyAxis)("left"),
                                               "bottom": SteadyAxis("bottom")})
        self.title = title
        self.percent = percent
        self._x_label = x_label
        self._report = report
        item = self.widget.getPlotItem()
        item.setTitle(title)
        item.setLabel("bottom", x_label)
        item.setLabel("left", y_label)
        item.getAxis("left").enableAutoSIPrefix(False)  # no "(x0.001)" scaling of accuracy or lr values
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        self.legend = item.addLegend(brush=(255, 255, 255, 210), labelTextSize="8pt", verSpacing=-6) if legend else None
        self._corners = (legend_corner, *(c for c in CORNERS if c != legend_corner))
        self._corner = legend_corner
        # An invisible point that the auto-range reaches up to: room above the curves for the legend.
        self._headroom = item.plot([], [], pen=pg.mkPen(0, 0, 0, 0))
        self._headroom_at: tuple[float, float] | None = None
        self._reset_range()
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
        item.vb.sigRangeChanged.connect(self.place_legend)
        item.vb.sigResized.connect(self.place_legend)
        self._proxy = pg.SignalProxy(self.widget.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)
        self.widget.installEventFilter(self)

    def add(self, name: str, color, width: float = 1.5, symbol: str | None = None) -> Series:
        series = Series()
        curve = self.widget.getPlotItem().plot(
            [], [], name=name, pen=pg.mkPen(color, width=width),
            symbol=symbol, symbolSize=6, symbolBrush=color, symbolPen=None,
        )
        self.curves[name] = (curve, series)
        return series

    def remove_curves(self) -> None:
        """Take every curve away (and out of the legend), for a plot whose set of curves changes."""
        item = self.widget.getPlotItem()
        for curve, _ in self.curves.values():
            item.removeItem(curve)
            if self.legend is not None:
                self.legend.removeItem(curve)
        self.curves.clear()
        self.clear()

    def redraw(self) -> None:
        """Give each curve whose visible points changed its decimated points (curves with nothing new are
        left alone: pyqtgraph's `setData` is the costly part)."""
        changed = False
        for name, (curve, series) in self.curves.items():
            window = self._window(series)
            if self._drawn.get(name) != window:
                idx = series.decimated(*window)
                curve.setData(series.x[idx], series.y[idx])
                self._drawn[name] = window
                changed = True
        self.stale = False
        if changed:
            self.place_legend()

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

    def place_legend(self, *_) -> None:
        """Keep the legend off the curves. While y auto-ranges, the legend sits top right and the range grows
        upward just enough that the curves under the legend pass below it; with a fixed y range (accuracy's
        0-100 %, or a zoom) it moves to the corner the fewest curve segments cross, and stays while none does."""
        if self.legend is None:
            return
        vb = self.widget.getPlotItem().vb
        w, h = vb.width(), vb.height()
        if w <= 0 or h <= 0:
            return
        paths = [_finite(curve.xData, curve.yData) for curve, _ in self.curves.values()
                 if curve.isVisible() and curve.xData is not None]
        paths = [(x, y) for x, y in paths if len(x)]
        lw, lh = self.legend.width(), self.legend.height()
        if vb.autoRangeEnabled()[1]:
            self._corner = (1, 0)
            self._make_room(paths, w, h, lw, lh)
        else:
            self._set_headroom(None)
            (x0, x1), (y0, y1) = vb.viewRange()
            pixels = [((x - x0) * (w / (x1 - x0)), (y1 - y) * (h / (y1 - y0))) for x, y in paths]

            def crossings(corner: tuple[int, int]) -> int:
                cx, cy = corner
                left = cx * (w - lw) + LEGEND_MARGIN * (1 - 2 * cx) - CURVE_REACH
                top = cy * (h - lh) + LEGEND_MARGIN * (1 - 2 * cy) - CURVE_REACH
                rect = (left, top, left + lw + 2 * CURVE_REACH, top + lh + 2 * CURVE_REACH)
                return sum(segments_through(px, py, rect) for px, py in pixels)

            if crossings(self._corner):
                self._corner = min(self._corners, key=crossings)
        cx, cy = self._corner
        self.legend.anchor(itemPos=self._corner, parentPos=self._corner,
                           offset=(LEGEND_MARGIN * (1 - 2 * cx), LEGEND_MARGIN * (1 - 2 * cy)))

    def _make_room(self, paths: list[tuple[np.ndarray, np.ndarray]], w: float, h: float, lw: float,
                   lh: float) -> None:
        """Raise the auto-range's top so that every curve right of the legend's left edge stays below the
        legend. The auto-range pads [lo, hi] by p * (hi - lo) each side, so the legend's band, a fraction f of
        the height from the top, is free of a curve peaking at y_b when hi >= lo + (y_b - lo) / (1 + p - f (1 + 2p))."""
        if not paths:
            self._set_headroom(None)
            return
        lo, hi = min(y.min() for _, y in paths), max(y.max() for _, y in paths)
        x0, x1 = self.widget.getPlotItem().vb.viewRange()[0]
        x_left = x0 + (w - LEGEND_MARGIN - lw - CURVE_REACH) * (x1 - x0) / w
        y_b = max((_peak_right_of(x, y, x_left) for x, y in paths), default=-np.inf)
        p = self.widget.getPlotItem().vb.suggestPadding(1)
        f = (LEGEND_MARGIN + lh + CURVE_REACH) / h
        top = lo + (y_b - lo) / max(1 + p - f * (1 + 2 * p), 0.25)  # at most 4x the range: a tiny plot overlaps
        self._set_headroom((paths[0][0][-1], top) if top > hi else None)

    def _set_headroom(self, point: tuple[float, float] | None) -> None:
        """Put the invisible point the auto-range reaches up to, or take it away (only when it changes: each
        change makes the view range again)."""
        if point != self._headroom_at:
            self._headroom_at = point
            self._headroom.setData(*([[point[0]], [point[1]]] if point else [[], []]))

    def _reset_range(self) -> None:
        """Auto-range again, dropping any pan or zoom (a percent plot keeps its 0-100 % y axis)."""
        item = self.widget.getPlotItem()
        item.enableAutoRange()  # the person can pan/zoom to override; the "A" button brings it back
        if self.percent:
            item.setYRange(0, 100, padding=0.05)  # a point at 100 % keeps its whole symbol

    def span_x(self, first: float, last: float) -> None:
        """Show x from `first` to `last` (a run's whole length, known as it starts) instead of auto-ranging it:
        the curves fill the plot as the run goes, and the x axis stays drawn (each new step moved the auto-range,
        hence redrew the axis and its grid). A zoom, or the "A" button, works as before."""
        if last <= first:
            first, last = first - 0.5, last + 0.5
        item = self.widget.getPlotItem()
        item.enableAutoRange(x=False)
        item.setXRange(first, last, padding=0.03)  # the newest point's symbol stays whole

    def clear(self) -> None:
        """Empty every curve and return to auto-range, so a new run is not drawn in the old run's ranges."""
        for curve, series in self.curves.values():
            series.clear()
            curve.setData([], [])
        self._drawn.clear()
        self._set_headroom(None)
        self.hide_value()
        self.widget.getPlotItem().vb.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self._reset_range()
        self._corner = self._corners[0]

    def drop_curves(self) -> None:
        """Take every curve away (a plot whose curves are one model's, e.g. one per block)."""
        for curve, _series in self.curves.values():
            self.widget.getPlotItem().removeItem(curve)
        self.curves.clear()
        self.clear()

    def show_value_at(self, x: float, y: float) -> str:
        """Move the crosshair to (x, y) in data coordinates and report each curve's nearest value."""
        self._vline.setPos(x)
        self._hline.setPos(y)
        self._vline.setVisible(True)
        self._hline.setVisible(True)
        parts = [f"{self._x_label}={x:.4g}"]
        for name, (_, series) in self.curves.items():
            if series.n:
                i = int(np.clip(np.searchsorted(series.x, x), 0, series.n - 1))
                if i > 0 and abs(series.x[i - 1] - x) < abs(series.x[i] - x):
                    i -= 1
                value = series.y[i]
                parts.append(f"{name}={value:.1f}%" if self.percent else f"{name}={value:.4g}")
        self.readout = "  ".join(parts)
        self._report(f"{self.title}: {self.readout}")
        return self.readout

    def hide_value(self) -> None:
        """Hide the crosshair and empty the read-out (the mouse left the plot)."""
        self._vline.setVisible(False)
        self._hline.setVisible(False)
        if self.readout:
            self.readout = ""
            self._report("")

    def _mouse_moved(self, args) -> None:
        pos = args[0]
        vb = self.widget.getPlotItem().vb
        if vb.sceneBoundingRect().contains(pos):
            point = vb.mapSceneToView(pos)
            self.show_value_at(point.x(), point.y())
        else:
            self.hide_value()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """On leaving the plot, send the last delayed mouse move first, so that it cannot show the read-out
        again after it was hidden."""
        if event.type() == QEvent.Type.Leave:
            self._proxy.flush()
            self.hide_value()
        return False


def _peak_right_of(x: np.ndarray, y: np.ndarray, x_left: float) -> float:
    """The highest y a polyline reaches at x >= `x_left` (its segment across `x_left` included)."""
    i = int(np.searchsorted(x, x_left))
    peak = y[i:].max() if i < len(x) else -np.inf
    if 0 < i < len(x) and x[i] > x[i - 1]:
        peak = max(peak, y[i - 1] + (y[i] - y[i - 1]) * (x_left - x[i - 1]) / (x[i] - x[i - 1]))
    return float(peak)


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def segments_through(px: np.ndarray, py: np.ndarray, rect: tuple[float, float, float, float]) -> int:
    """How many segments of the polyline (px, py) pass through `rect` = (left, top, right, bottom), all in
    pixels (a lone point: whether it lies inside). Each segment is clipped against the rect's two slabs."""
    left, top, right, bottom = rect
    if len(px) == 1:
        return int(left <= px[0] <= right and top <= py[0] <= bottom)
    x0, y0, dx, dy = px[:-1], py[:-1], np.diff(px), np.diff(py)
    with np.errstate(divide="ignore", invalid="ignore"):
        tx = np.sort(np.stack([(left - x0) / dx, (right - x0) / dx]), axis=0)
        ty = np.sort(np.stack([(top - y0) / dy, (bottom - y0) / dy]), axis=0)
    enter = np.fmax(np.fmax(tx[0], ty[0]), 0.0)
    leave = np.fmin(np.fmin(tx[1], ty[1]), 1.0)
    return int(np.count_nonzero(enter <= leave))
