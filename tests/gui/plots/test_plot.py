"""The plots stay readable: the read-out never moves them, legends keep off the curves, the newest point is in
view, accuracy reads in %."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, QRectF
from PySide6.QtWidgets import QApplication

from gui.plots.training import TrainingPlots
from tests.gui.plots.util import OVERFITTING, STUCK, TYPICAL, run

SYMBOL_RADIUS = 3  # symbolSize 6


def shown(qtbot, width: int = 560, height: int = 640) -> TrainingPlots:
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(width, height)
    plots.show()
    qtbot.waitExposed(plots)
    return plots


def settle(plots: TrainingPlots) -> None:
    """Draw everything and paint twice: the auto-range (and the legend's room) settles on paint, and a new range
    can widen the axis' tick labels, hence narrow the view, once more."""
    plots.redraw()
    for _ in range(2):
        QApplication.processEvents()
        plots.grab()


def geometry(plots: TrainingPlots) -> list:
    return [plots.size(), plots.minimumSizeHint()] + [
        (p.widget.geometry(), p.widget.getPlotItem().vb.sceneBoundingRect()) for p in plots.plots]


def center_of_view(plot):
    return plot.widget.mapFromScene(plot.widget.getPlotItem().vb.sceneBoundingRect().center())


def test_a_long_readout_never_moves_or_resizes_the_plots(qtbot):
    plots = shown(qtbot, width=460)
    run(plots, *TYPICAL)
    settle(plots)
    before = geometry(plots)
    qtbot.mouseMove(plots.loss.widget.viewport(), center_of_view(plots.loss))
    qtbot.waitUntil(lambda: plots.loss.readout != "", timeout=2000)
    settle(plots)
    label = plots.readout_label
    assert label.text().startswith("Loss: step=") and "validation=" in label.text()
    assert label.fontMetrics().horizontalAdvance(label.text()) > label.width()  # longer than its line: elided
    assert geometry(plots) == before
    QApplication.sendEvent(plots.loss.widget, QEvent(QEvent.Type.Leave))
    settle(plots)
    assert plots.loss.readout == "" and label.text() == ""
    assert geometry(plots) == before


def test_the_readout_goes_when_the_mouse_leaves_the_data(qtbot):
    plots = shown(qtbot)
    run(plots, *TYPICAL)
    settle(plots)
    viewport = plots.accuracy.widget.viewport()
    qtbot.mouseMove(viewport, center_of_view(plots.accuracy))
    qtbot.waitUntil(lambda: plots.accuracy.readout != "", timeout=2000)
    assert plots.accuracy._vline.isVisible()
    view = plots.accuracy.widget.getPlotItem().vb.sceneBoundingRect()
    over_the_axis = QPointF(view.left() - 15, view.center().y())
    qtbot.mouseMove(viewport, plots.accuracy.widget.mapFromScene(over_the_axis))
    qtbot.waitUntil(lambda: plots.accuracy.readout == "", timeout=2000)
    assert plots.readout_label.text() == "" and not plots.accuracy._vline.isVisible()


def curve_in_scene(vb, x: np.ndarray, y: np.ndarray, per_segment: int = 40) -> list[QPointF]:
    """Points along the drawn polyline, densely, in scene coordinates."""
    t = np.linspace(0, 1, per_segment, endpoint=False)
    xs = np.append((x[:-1, None] + np.diff(x)[:, None] * t).ravel(), x[-1])
    ys = np.append((y[:-1, None] + np.diff(y)[:, None] * t).ravel(), y[-1])
    return [vb.mapViewToScene(QPointF(a, b)) for a, b in zip(xs, ys, strict=True) if np.isfinite(a) and np.isfinite(b)]


@pytest.mark.parametrize("shape", [TYPICAL, OVERFITTING, STUCK], ids=["typical", "overfitting", "stuck"])
def test_legends_keep_off_the_curves(qtbot, shape):
    plots = shown(qtbot)
    run(plots, *shape)
    settle(plots)
    assert plots.lr.legend is None and plots.speed.legend is None  # one curve: its axis names it
    for plot in (plots.loss, plots.accuracy):
        vb = plot.widget.getPlotItem().vb
        legend = plot.legend.sceneBoundingRect()
        assert vb.sceneBoundingRect().contains(legend)
        near = legend.adjusted(-SYMBOL_RADIUS, -SYMBOL_RADIUS, SYMBOL_RADIUS, SYMBOL_RADIUS)
        for name, (curve, _) in plot.curves.items():
            hits = [p for p in curve_in_scene(vb, curve.xData, curve.yData) if near.contains(p)]
            assert not hits, f"{plot.title}: {name} passes under the legend"


def test_the_newest_point_and_its_symbol_stay_in_view_all_run(qtbot):
    plots = shown(qtbot)
    val_losses, val_accs = TYPICAL
    for n in range(1, len(val_losses) + 1):
        plots.clear()
        run(plots, val_losses[:n], val_accs[:n])
        settle(plots)
        for plot in plots.plots:
            vb = plot.widget.getPlotItem().vb
            view = vb.sceneBoundingRect()
            for name, (_, series) in plot.curves.items():
                p = vb.mapViewToScene(QPointF(series.x[-1], series.y[-1]))
                symbol = QRectF(p.x() - SYMBOL_RADIUS, p.y() - SYMBOL_RADIUS, 2 * SYMBOL_RADIUS, 2 * SYMBOL_RADIUS)
                assert view.contains(symbol), f"epoch {n}: {plot.title} {name}'s newest point is cut off"


def test_accuracy_reads_in_percent(qtbot):
    plots = shown(qtbot)
    run(plots, *TYPICAL)
    settle(plots)
    assert np.allclose(plots.val_acc.y, [50, 60, 70, 80, 90])
    item = plots.accuracy.widget.getPlotItem()
    (_, _), (y0, y1) = item.vb.viewRange()
    assert y0 < 0 and 100 < y1 < 110  # the whole 0-100 %, a 100 % symbol included
    assert item.getAxis("left").tickStrings([0, 50, 100], 1, 50) == ["0%", "50%", "100%"]
    assert "validation=70.0%" in plots.accuracy.show_value_at(3, 70)
    assert plots.readout_label.text().startswith("Accuracy: epoch=3")



def pixels(plots: TrainingPlots) -> np.ndarray:
    image = plots.grab().toImage()
    return np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.width(), 4).astype(int)



def test_the_axes_drawn_from_their_cache_read_as_drawn_afresh(qtbot):
    """The axes (and their grid) are painted from a pixmap kept while their range stays: what shows, after new
    points, a zoom and a resize, is what the same axes draw without that cache (but for a pixel of a grid line
    where it meets the view's edge: a stale tick label differs by 255, a stale grid line over its length)."""
    plots = shown(qtbot)
    axes = [p.widget.getPlotItem().getAxis(side) for p in plots.plots for side in ("left", "bottom")]

    def as_drawn_afresh() -> bool:
        settle(plots)
        cached = pixels(plots)
        for axis in axes:
            axis.setCacheMode(axis.CacheMode.NoCache)
        fresh = pixels(plots)
        for axis in axes:
            axis.setCacheMode(axis.CacheMode.DeviceCoordinateCache)
        differ = np.abs(cached - fresh).max(axis=2)
        return differ.max() <= 60 and (differ > 20).sum() <= 50

    val_losses, val_accs = TYPICAL
    for n in (1, 3, len(val_losses)):
        plots.clear()
        run(plots, val_losses[:n], val_accs[:n])
        assert as_drawn_afresh(), f"after epoch {n}"
    before = pixels(plots)
    plots.loss.widget.getPlotItem().vb.setXRange(0, 1000, padding=0)
    plots.accuracy.widget.getPlotItem().vb.setYRange(40, 60, padding=0)
    assert as_drawn_afresh()
    assert np.abs(pixels(plots) - before).max() > 100
    plots.resize(700, 520)
    assert as_drawn_afresh(), "after a resize"
