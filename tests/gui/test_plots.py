"""The live plots: buffers grow, redraws come from the timer (not per batch), crosshair reads values."""

import numpy as np

from engine.events import BatchEnded, EpochEnded
from gui.plots import MAX_REDRAWS_PER_SECOND, Series, TrainingPlots


def batch(step: int, steps_per_epoch: int = 10, loss: float = 1.0) -> BatchEnded:
    return BatchEnded(epoch=(step - 1) // steps_per_epoch + 1, step=(step - 1) % steps_per_epoch + 1,
                      steps_per_epoch=steps_per_epoch, global_step=step, loss=loss, accuracy=0.5,
                      lr=1e-3, images_per_second=100.0 + step, eta_seconds=5.0)


def epoch(n: int, val_acc: float) -> EpochEnded:
    return EpochEnded(epoch=n, epochs=3, train_loss=1.0 / n, train_accuracy=val_acc - 0.1, val_loss=1.2 / n,
                      val_accuracy=val_acc, lr=1e-3, seconds=1.0, images_per_second=100.0, eta_seconds=1.0,
                      best_val_accuracy=val_acc, is_best=True)


def test_series_grows_past_its_capacity_and_keeps_every_point():
    s = Series(capacity=4)
    for i in range(10):
        s.extend([i, i + 0.5], [2 * i, 2 * i + 1])
    assert s.n == 20
    assert np.array_equal(s.x[:4], [0, 0.5, 1, 1.5])
    assert s.y[-1] == 19


def test_batches_are_drawn_by_the_timer_not_per_batch(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    for start in range(1, 101, 10):
        plots.add_batches([batch(s) for s in range(start, start + 10)])
    assert plots.redraws == 0  # nothing drawn synchronously
    qtbot.waitUntil(lambda: plots.redraws >= 1, timeout=2000)
    redraws = plots.redraws
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
    assert list(plots.val_acc.y) == [0.5, 0.7, 0.9]
    assert list(plots.val_loss.x) == [10, 20, 30]  # validation loss sits at the end of each epoch's steps
    assert plots.lr_series.n == 30 and plots.speed_series.n == 30
    read = plots.accuracy.show_value_at(2.1, 0.7)
    assert "validation=0.7" in read and "train=0.6" in read


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
