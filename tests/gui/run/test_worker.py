"""The training worker: a real run of the demo CNN in a real QThread, its signals, stop, pause and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject

from engine.events import BatchEnded, EpochEnded, FitEnded, FitStarted
from engine.project import Project
from gui import threads
from gui.run.worker import TrainingRun
from tests.imagesets import make_image_folder


def tiny_project(root: Path, epochs: int = 2, per_class: int = 8) -> Project:
    """The demo CNN from scratch on 32 px shapes: 2 classes x 8 images, 3 steps of 4 per epoch."""
    data = make_image_folder(root / "data", per_class=per_class, classes=("circle", "square"))
    project = Project(name="tiny", base_dir=root)
    for key, value in {
        "model.arch": "thaw_digits_cnn", "model.weights": "none", "data.train": str(data),
        "data.val_fraction": 0.25, "data.image_size": 32, "data.augment": "none", "freeze.preset": "full",
        "train.epochs": epochs, "train.batch_size": 4, "train.device": "cpu", "train.amp": False,
        "train.out_dir": str(root / "runs"),
    }.items():
        project.set(key, value)
    return project


class Recorder(QObject):
    """Collects the worker's signals. A QObject, so its slots run queued in the GUI thread like the window's."""

    def __init__(self, run: TrainingRun) -> None:
        super().__init__()
        self.started: list[FitStarted] = []
        self.batches: list[BatchEnded] = []
        self.emits = 0
        self.epochs: list[EpochEnded] = []
        self.finished: list[FitEnded] = []
        self.errors: list[str] = []
        w = run.worker
        w.started.connect(self._started)
        w.batch_ended.connect(self._batches)
        w.epoch_ended.connect(self._epoch)
        w.finished.connect(self._finished)
        w.errored.connect(self._errored)

    def _started(self, event) -> None:
        self.started.append(event)

    def _epoch(self, event) -> None:
        self.epochs.append(event)

    def _finished(self, event) -> None:
        self.finished.append(event)

    def _errored(self, message: str) -> None:
        self.errors.append(message)

    def _batches(self, events: list) -> None:
        self.emits += 1
        self.batches.extend(events)


@pytest.fixture
def make_run():
    runs: list[TrainingRun] = []

    def make(project: Project) -> tuple[TrainingRun, Recorder]:
        run = TrainingRun(project)
        runs.append(run)
        return run, Recorder(run)

    yield make
    for run in runs:
        assert run.join(30000)


def test_a_short_run_delivers_every_event_in_order(qtbot, tmp_path, make_run):
    run, rec = make_run(tiny_project(tmp_path))
    with qtbot.waitSignal(run.worker.finished, timeout=120_000):
        run.start()
    qtbot.waitUntil(lambda: not run.is_running(), timeout=10_000)
    assert rec.errors == []
    assert len(rec.started) == 1 and rec.started[0].epochs == 2
    steps = rec.started[0].steps_per_epoch
    assert [b.global_step for b in rec.batches] == list(range(1, 2 * steps + 1))
    assert rec.emits <= len(rec.batches)  # batches arrive grouped, never more signals than batches
    assert [e.epoch for e in rec.epochs] == [1, 2]
    result = rec.finished[0]
    assert result.epochs_completed == 2 and not result.stopped_by_user and result.frozen_verified
    assert (Path(result.run_dir) / "model.safetensors").is_file()
    assert (Path(result.run_dir) / "summary.json").is_file()
    assert not threads.running()


def test_stop_ends_the_run_within_a_batch_and_keeps_the_model(qtbot, tmp_path, make_run):
    run, rec = make_run(tiny_project(tmp_path, epochs=200))
    run.start()
    qtbot.waitUntil(lambda: len(rec.batches) >= 1, timeout=120_000)
    with qtbot.waitSignal(run.worker.finished, timeout=10_000):
        run.request_stop()
    assert run.thread.wait(5000)
    result = rec.finished[0]
    assert result.stopped_by_user and result.epochs_completed < 200
    assert (Path(result.run_dir) / "model.safetensors").is_file()
    assert rec.errors == []


def test_pause_holds_the_loop_until_resume(qtbot, tmp_path, make_run):
    run, rec = make_run(tiny_project(tmp_path, epochs=3))
    run.start()
    qtbot.waitUntil(lambda: len(rec.batches) >= 1, timeout=120_000)
    with qtbot.waitSignal(run.worker.paused_changed, timeout=5000):
        run.pause()
    held = len(rec.batches)  # the loop holds: everything before the pause has been flushed
    qtbot.wait(1000)
    assert len(rec.batches) == held and not rec.finished and run.is_running()
    with qtbot.waitSignal(run.worker.finished, timeout=120_000):
        run.resume()
    assert rec.finished[0].epochs_completed == 3


def test_stop_releases_a_paused_run(qtbot, tmp_path, make_run):
    run, rec = make_run(tiny_project(tmp_path, epochs=200))
    run.start()
    qtbot.waitUntil(lambda: len(rec.batches) >= 1, timeout=120_000)
    run.pause()
    with qtbot.waitSignal(run.worker.finished, timeout=10_000):
        run.request_stop()
    assert rec.finished[0].stopped_by_user


def test_an_error_in_the_run_arrives_as_a_message(qtbot, tmp_path, make_run):
    project = tiny_project(tmp_path)
    for image in (tmp_path / "data" / "square").iterdir():  # one class left: nothing to learn
        image.unlink()
    (tmp_path / "data" / "square").rmdir()
    run, rec = make_run(project)
    with qtbot.waitSignal(run.worker.errored, timeout=60_000) as blocker:
        run.start()
    assert "class" in blocker.args[0].lower()
    assert run.thread.wait(10_000)
    assert rec.finished == []
