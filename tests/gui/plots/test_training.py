"""The live plots: buffers grow, redraws come from the timer (not per batch), crosshair reads values, a new run
starts afresh and a continued one shows its earlier epochs."""

import numpy as np

from gui.plots.training import MAX_REDRAWS_PER_SECOND, TrainingPlots
from tests.gui.plots.util import batch, epoch


def test_batches_are_drawn_by_the_timer_not_per_batch(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    for start in range(1, 101, 10):
        plots.add_batches([batch(s) for s in range(start, start + 10)])
    assert plots.redraws == 0  # nothing drawn synchronously
    qtbot.waitUntil(lambda: plots.redraws >= 1, timeout=2000)
    assert plots.lr.pending() and plots.speed.pending()  # one plot per tick: the others wait their turn
    qtbot.waitUntil(lambda: not any(p.pending() for p in plots.plots), timeout=2000)
    redraws = plots.redraws
    assert redraws >= 3  # loss, learning rate, throughput, each on its own tick
    curve = plots.loss.curves["train (smoothed)"][0]
    assert len(curve.xData) == 100
    # nothing new: the timer does not redraw again
    qtbot.wait(3 * 1000 // MAX_REDRAWS_PER_SECOND + 50)
    assert plots.redraws == redraws


def test_epochs_and_smoothing(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.add_batches([batch(s, loss=2.0 if s % 2 else 0.0) for s in range(1, 31)])
    for n, acc in ((1, 0.5), (2, 0.7), (3, 0.9)):
        plots.add_epoch(epoch(n, acc))
    plots.redraw()
    assert plots.train_loss_raw.n == 30 and plots.train_loss.n == 30
    raw, smooth = plots.train_loss_raw.y, plots.train_loss.y
    assert np.ptp(smooth[5:]) < np.ptp(raw[5:])  # the smoothed curve varies far less than the raw one
    assert np.allclose(plots.val_acc.y, [50, 70, 90])  # in %
    assert list(plots.val_loss.x) == [10, 20, 30]  # validation loss sits at the end of each epoch's steps
    assert plots.lr_series.n == 30 and plots.speed_series.n == 30
    read = plots.accuracy.show_value_at(2.1, 70)
    assert "validation=70.0%" in read and "train=60.0%" in read


def test_smoothed_loss_follows_a_short_run(qtbot):
    """4 batches an epoch: the smoothed curve averages about an epoch, so it tracks a falling loss; it starts at
    the first loss, not pulled toward it afterwards."""
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    losses = np.linspace(1.6, 0.1, 120)
    plots.add_batches([batch(s + 1, steps_per_epoch=4, loss=v) for s, v in enumerate(losses)])
    smooth = plots.train_loss.y
    assert smooth[0] == losses[0]
    assert np.all(np.abs(smooth[8:] - losses[8:]) < 0.05)  # lags the falling loss by about 3 batches' drop
    plots.clear()
    plots.add_batches([batch(1, steps_per_epoch=4, loss=0.2)])
    assert plots.train_loss.y[0] == 0.2  # a new run starts afresh


def test_many_batches_stay_cheap_to_hold_and_draw(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(800, 600)
    events = [batch(s, steps_per_epoch=1000, loss=1.0 / s) for s in range(1, 100_001)]
    for i in range(0, len(events), 5000):
        plots.add_batches(events[i : i + 5000])
    plots.redraw()
    item = plots.loss.widget.getPlotItem()
    assert plots.train_loss.n == 100_000
    assert item.ctrl.clipToViewCheck.isChecked()
    assert item.ctrl.downsampleCheck.isChecked() and item.ctrl.peakRadio.isChecked()


def test_clear_empties_every_curve(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.add_batches([batch(s) for s in range(1, 5)])
    plots.add_epoch(epoch(1, 0.5))
    plots.clear()
    plots.redraw()
    assert all(series.n == 0 for p in plots.plots for _, series in p.curves.values())


def test_redraw_hands_pyqtgraph_a_few_points_per_pixel_and_the_readout_uses_every_point(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(800, 600)
    plots.show()
    plots.add_batches([batch(s, steps_per_epoch=1000, loss=1.0 / s) for s in range(1, 50_001)])
    plots.redraw()
    curve = plots.loss.curves["train (batch)"][0]
    width = max(int(plots.loss.widget.getPlotItem().vb.width()), 200)
    assert 2 * width <= len(curve.xData) <= 4 * width + 4
    assert curve.xData[-1] == 50_000 and curve.yData[-1] == 1.0 / 50_000  # the newest point is drawn
    assert curve.yData.max() == 1.0  # the first (highest) loss is kept
    read = plots.loss.show_value_at(12_345.2, 0.5)
    assert f"train (batch)={1.0 / 12_345:.4g}" in read
    # zoomed in on 100 steps: those points are drawn as they are
    plots.loss.widget.getPlotItem().vb.setXRange(1_000, 1_100, padding=0)
    qtbot.waitUntil(lambda: curve.xData is not None and len(curve.xData) < 200, timeout=2000)
    assert curve.xData[0] <= 1_000 and curve.xData[-1] >= 1_100
    assert np.all(np.diff(curve.xData) == 1)


def test_clear_drops_the_old_runs_zoom_and_ranges(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(560, 640)
    plots.show()
    plots.add_batches([batch(s, loss=10.0) for s in range(1, 1001)])
    plots.add_epoch(epoch(1, 0.5))
    plots.redraw()
    plots.loss.widget.getPlotItem().vb.setRange(xRange=(400, 500), yRange=(9, 11))  # the person zoomed
    plots.accuracy.widget.getPlotItem().vb.setYRange(40, 60)
    plots.loss.show_value_at(450, 10)
    plots.clear()
    loss, accuracy = (p.widget.getPlotItem().vb for p in (plots.loss, plots.accuracy))
    assert loss.autoRangeEnabled() == [True, True] and accuracy.autoRangeEnabled()[0]
    assert loss.viewRange() == [[0, 1], [0, 1]]  # no old axes before the new run's first point
    assert accuracy.viewRange()[1] == [-5, 105]  # back to 0-100 %
    assert plots.loss.readout == "" and plots.readout_label.text() == "" and not plots.loss._vline.isVisible()
    plots.add_batches([batch(s, loss=1.0 + 0.01 * s) for s in range(1, 31)])
    plots.redraw()
    plots.grab()
    (x0, x1), (y0, y1) = loss.viewRange()
    assert 0 < x1 - x0 < 40 and x0 < 1 and x1 > 30  # the new run's 30 steps, auto-ranged
    assert 0.9 < y0 < 1.01 and 1.3 <= y1 < 2  # its losses, not the old run's 10s (a legend's room above)


def test_a_continued_run_shows_its_earlier_epochs(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    earlier = [epoch(n, acc, epochs=5) for n, acc in ((1, 0.5), (2, 0.6), (3, 0.7))]
    plots.clear()
    plots.add_history(earlier)
    assert list(plots.val_acc.x) == [1, 2, 3] and np.allclose(plots.val_acc.y, [50, 60, 70])
    assert np.allclose(plots.train_acc.y, [40, 50, 60])
    assert plots.val_loss.n == 0  # drawn against steps: waits for the first batch to tell the steps per epoch
    plots.add_batches([batch(s) for s in range(31, 41)])  # epoch 4 of a run with 10 steps per epoch
    plots.add_epoch(epoch(4, 0.8, epochs=5))
    assert list(plots.val_loss.x) == [10, 20, 30, 40]
    assert np.allclose(plots.val_loss.y, [1.2, 0.6, 0.4, 0.3])
    assert list(plots.train_loss.x[:4]) == [5, 15, 25, 31]  # each earlier epoch's mean loss at its middle
    assert np.allclose(plots.train_loss.y[:3], [1.0, 0.5, 1 / 3])
    assert list(plots.lr_series.x[:4]) == [10, 20, 30, 31] and list(plots.speed_series.x[:4]) == [10, 20, 30, 31]
    assert plots.train_loss_raw.n == 10  # no batches for the earlier epochs
    assert list(plots.val_acc.x) == [1, 2, 3, 4]
    for _, series in (c for p in plots.plots for c in p.curves.values()):
        assert np.all(np.diff(series.x) > 0)
    plots.redraw()
    plots.grab()
    x0, x1 = plots.loss.widget.getPlotItem().vb.viewRange()[0]
    assert x0 < 5 and x1 > 40  # the whole history in view
    plots.clear()
    plots.add_history(earlier)
    plots.clear()  # a new run after all: the earlier epochs are not drawn with its first batch
    plots.add_batches([batch(1)])
    assert plots.val_loss.n == 0 and plots.train_loss.n == 1 and plots.val_acc.n == 0
