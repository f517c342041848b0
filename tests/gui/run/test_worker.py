"""The training run: the event relay without a thread (throttling, pausing), then a real run of the demo CNN in a
real QThread, its signals, stop, pause and errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QObject

from engine import events as ev
from engine.errors import DataError
from gui import tasks
from gui.run.worker import MAX_EMITS_PER_SECOND, EventRelay, TrainingRun


def batch(step: int) -> ev.BatchEnded:
    return ev.BatchEnded(epoch=1, step=step, steps_per_epoch=100, global_step=step, loss=0.5, accuracy=0.5,
                         lr=1e-3, images_per_second=10.0, eta_seconds=1.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_relay_groups_batches_at_most_thirty_times_a_second():
    clock, reported = FakeClock(), []
    relay = EventRelay(threading.Event(), clock)
    relay.report = reported.append
    clock.now = 1.0
    for step in range(1, 101):  # 100 batches in one second
        relay(batch(step))
        clock.now += 0.01
    relay(ev.LogMessage("hello"))  # any other event sends what is pending first
    names = [name for name, _ in reported]
    assert names[-1] == "log" and set(names[:-1]) == {"batches"}
    lists = [payload for name, payload in reported if name == "batches"]
    assert [b.step for group in lists for b in group] == list(range(1, 101))  # all of them, in order
    assert len(lists) <= MAX_EMITS_PER_SECOND + 1 and relay.batch_emits == len(lists)


def test_the_relay_keeps_the_end_event_and_passes_the_rest_by_name():
    reported = []
    relay = EventRelay(threading.Event())
    relay.report = reported.append
    start = ev.FitStarted(epochs=1, steps_per_epoch=1, train_size=1, val_size=1, classes=("a", "b"), device="cpu",
                          trainable_params=1, total_params=1, feature_cache=False, run_dir="")
    end = ev.FitEnded(epochs_completed=1, best_val_accuracy=1.0, final_val_accuracy=1.0, stopped_early=False,
                      stopped_by_user=False, seconds=1.0, frozen_verified=True, run_dir="")
    relay(start)
    relay(end)
    assert reported == [("fit_started", start)] and relay.ended is end


def test_a_paused_relay_holds_the_loop_until_resumed_or_stopped():
    stop, reported = threading.Event(), []
    relay = EventRelay(stop)
    relay.report = reported.append
    relay.pause()
    loop = threading.Thread(target=relay, args=(batch(1),))  # the training thread, stand-in
    loop.start()
    loop.join(0.5)
    assert loop.is_alive() and reported == [("batches", [batch(1)]), ("paused", True)]
    relay.resume()
    loop.join(5)
    assert not loop.is_alive() and reported[-1] == ("paused", False)
    relay.pause()
    loop = threading.Thread(target=relay, args=(batch(2),))
    loop.start()
    stop.set()
    relay.release()
    loop.join(5)
    assert not loop.is_alive()


class Recorder(QObject):
    """Collects the run's signals (delivered in the GUI thread)."""

    def __init__(self, run: TrainingRun) -> None:
        super().__init__()
        self.started, self.batches, self.epochs, self.returned, self.errors = [], [], [], [], []
        self.activity = []
        self.emits = 0
        run.fit_started.connect(self.started.append)
        run.activity.connect(self.activity.append)
        run.batches.connect(self._batches)
        run.epoch_ended.connect(self.epochs.append)
        run.returned.connect(self.returned.append)
        run.errored.connect(self.errors.append)

    def _batches(self, events: list) -> None:
        self.emits += 1
        self.batches.extend(events)


@pytest.fixture
def make_run():
    runs: list[TrainingRun] = []

    def make(project) -> tuple[TrainingRun, Recorder]:
        run = TrainingRun(project)
        runs.append(run)
        return run, Recorder(run)

    yield make
    for run in runs:
        assert run.join(30000)


def tiny(project_factory, epochs: int = 2):
    """2 classes x 8 images, 3 steps of 4 per epoch."""
    return project_factory(classes=("circle", "square"), train__epochs=epochs, train__batch_size=4,
                           train__device="cpu", train__amp=False, train__activity_every=2,
                           train__activity_budget=0.0)


def test_a_short_run_delivers_every_event_in_order(qtbot, project_factory, make_run):
    run, rec = make_run(tiny(project_factory))
    with qtbot.waitSignal(run.finished, timeout=120_000):
        run.start()
    assert not run.is_running() and rec.errors == []
    assert len(rec.started) == 1 and rec.started[0].epochs == 2
    steps = rec.started[0].steps_per_epoch
    assert [b.global_step for b in rec.batches] == list(range(1, 2 * steps + 1))
    assert rec.emits <= len(rec.batches)  # batches arrive grouped, never more signals than batches
    assert [e.epoch for e in rec.epochs] == [1, 2]
    assert [a.global_step for a in rec.activity] == list(range(2, 2 * steps + 1, 2))  # which layers learn
    result = rec.returned[0]
    assert result.epochs_completed == 2 and not result.stopped_by_user and result.frozen_verified
    assert (Path(result.run_dir) / "model.safetensors").is_file()
    assert (Path(result.run_dir) / "summary.json").is_file()
    assert not tasks.running()


def started(qtbot, make_run, project_factory, epochs: int) -> tuple[TrainingRun, Recorder]:
    """A run started and past its first batch."""
    run, rec = make_run(tiny(project_factory, epochs=epochs))
    run.start()
    qtbot.waitUntil(lambda: len(rec.batches) >= 1, timeout=120_000)
    return run, rec


def test_stop_ends_the_run_within_a_batch_and_keeps_the_model(qtbot, project_factory, make_run):
    run, rec = started(qtbot, make_run, project_factory, epochs=200)
    qtbot.waitUntil(lambda: len(rec.epochs) >= 1, timeout=120_000)  # a run stopped in epoch 1 keeps no model
    with qtbot.waitSignal(run.finished, timeout=10_000):
        run.request_stop()
    result = rec.returned[0]
    assert result.stopped_by_user and result.epochs_completed < 200
    assert (Path(result.run_dir) / "model.safetensors").is_file()
    assert rec.errors == []


def test_pause_holds_the_loop_until_resume(qtbot, project_factory, make_run):
    run, rec = started(qtbot, make_run, project_factory, epochs=3)
    with qtbot.waitSignal(run.paused_changed, timeout=5000):
        run.pause()
    held = len(rec.batches)  # the loop holds: everything before the pause has been flushed
    qtbot.wait(1000)
    assert len(rec.batches) == held and not rec.returned and run.is_running()
    with qtbot.waitSignal(run.finished, timeout=120_000):
        run.resume()
    assert rec.returned[0].epochs_completed == 3


def test_stop_releases_a_paused_run(qtbot, project_factory, make_run):
    run, rec = started(qtbot, make_run, project_factory, epochs=200)
    run.pause()
    with qtbot.waitSignal(run.finished, timeout=10_000):
        run.request_stop()
    assert rec.returned[0].stopped_by_user


def test_an_error_in_the_run_arrives_as_the_exception(qtbot, tmp_path, project_factory, make_run):
    project = tiny(project_factory)
    for image in (tmp_path / "train" / "square").iterdir():  # one class left: nothing to learn
        image.unlink()
    (tmp_path / "train" / "square").rmdir()
    run, rec = make_run(project)
    with qtbot.waitSignal(run.finished, timeout=60_000):
        run.start()
    assert len(rec.errors) == 1 and isinstance(rec.errors[0], DataError)  # told apart by type, not by text
    assert "class" in str(rec.errors[0]).lower()
    assert rec.returned == []
