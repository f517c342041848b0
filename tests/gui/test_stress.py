"""The window under stress: starting twice, opening another project mid-run, Stop pressed repeatedly, closing
mid-run, a worker that fails; each is handled and no QThread is left running (tests/conftest.py checks)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from engine import events as ev
from engine import project as projects
from engine.errors import DataError
from engine.model.assemble import assemble as real_assemble
from engine.train import loop as training
from gui import tasks

RUN_MS = 120_000


@pytest.fixture
def window(window, tmp_path, project_factory):
    """The window (tests/conftest.py) on a saved 200-epoch shapes project: a run goes on until it is stopped."""
    p = project_factory(train__epochs=200, train__device="cpu")
    path = tmp_path / "shapes.thaw.toml"
    window.set_project(projects.save(p, path), path)
    return window


def _start_and_wait_for_a_batch(window, qtbot) -> None:
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=RUN_MS)  # the data is scanned
    assert window.start()
    with qtbot.waitSignal(window.run.batches, timeout=RUN_MS):
        pass


def test_starting_twice_runs_once_and_stop_pressed_repeatedly_stops_once(window, qtbot):
    _start_and_wait_for_a_batch(window, qtbot)
    first = window.run
    assert not window.start() and window.run is first
    assert len(tasks.running()) == 1
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        for _ in range(5):
            window.stop()
            window.stop_action.trigger()
    assert window.last_result.stopped_by_user and window.last_error is None
    assert window.start_action.isEnabled() and not window.stop_action.isEnabled()
    # a run stopped after its first epoch is shown in Results, whose reading task ends on its own
    qtbot.waitUntil(lambda: not tasks.running(), timeout=RUN_MS)


def test_another_project_cannot_replace_the_running_one(window, qtbot, tmp_path, project_factory):
    other = projects.save(project_factory(name="other"), tmp_path / "other.thaw.toml")
    _start_and_wait_for_a_batch(window, qtbot)
    assert not window.open_action.isEnabled() and not window.new_action.isEnabled()
    assert not window.open_path(tmp_path / "other.thaw.toml", ask=False)
    assert window.project.name == "shapes" and other.name == "other"
    window.new_project()
    assert window.project.name == "shapes" and window.is_running()
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        window.stop()


def test_closing_mid_run_asks_then_stops_and_keeps_the_run(window, qtbot, answer):
    _start_and_wait_for_a_batch(window, qtbot)
    answer["button"] = QMessageBox.StandardButton.No
    assert not window.close()  # "a run is in progress": the person says no, it keeps running
    assert window.is_running()
    answer["button"] = QMessageBox.StandardButton.Yes
    assert window.close()
    assert not tasks.running() and not window.is_running()
    assert answer["asked"][:2] == ["Training is running"] * 2


def test_data_deleted_during_a_run_is_an_error_message(window, qtbot, tmp_path):
    def delete_after_epoch_1(event):
        if event.epoch == 1:
            shutil.rmtree(tmp_path / "train")

    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=RUN_MS)
    assert window.start()
    window.run.epoch_ended.connect(delete_after_epoch_1)
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        pass
    assert isinstance(window.last_error, DataError) and "no training image could be read" in str(window.last_error)
    assert window.start_action.isEnabled() is False  # the data folder is gone: Start says why
    assert not tasks.running()


def test_a_model_that_raises_is_an_error_message_and_the_window_recovers(window, qtbot, monkeypatch):
    calls = []

    def fail_on_the_third_batch(_module, _args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the model broke")

    def assemble(*a, **kw):
        built = real_assemble(*a, **kw)
        built.model.register_forward_pre_hook(fail_on_the_third_batch)
        return built

    monkeypatch.setattr(training, "assemble", assemble)
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=RUN_MS)
    assert window.start()
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        pass
    assert isinstance(window.last_error, RuntimeError) and "the model broke" in str(window.last_error)
    assert "training failed: RuntimeError: the model broke" in window.error_box.text()
    assert window.start_action.isEnabled() and not window.is_running()
    assert not tasks.running()
    monkeypatch.setattr(training, "assemble", real_assemble)
    window.project.train.epochs = 1
    assert window.start()
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        pass
    assert window.last_result is not None and window.last_result.epochs_completed == 1


def test_out_of_memory_in_the_window_is_a_warning_not_a_failure(window, qtbot, monkeypatch):
    def small_memory(_module, args):
        if args[0].shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    def assemble(*a, **kw):
        built = real_assemble(*a, **kw)
        built.model.register_forward_pre_hook(small_memory)
        return built

    monkeypatch.setattr(training, "assemble", assemble)
    window.project.train.epochs = 1
    logs = []
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=RUN_MS)
    assert window.start()
    window.run.log.connect(lambda m: logs.append(m))
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        pass
    assert window.last_error is None and window.last_result.epochs_completed == 1
    assert any(isinstance(m, ev.LogMessage) and m.level == "warning" and "out of memory" in m.text for m in logs)


def test_continue_a_stopped_run_from_its_folder(window, qtbot, tmp_path):
    window.project.train.epochs = 3
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=RUN_MS)
    assert window.start()
    run, relay = window.run, window.run.relay

    def stop_after_epoch_1(event):  # in the training thread (the relay is the engine's callback): exactly then
        relay.on_other(event)
        run.request_stop()

    relay.on_epoch_ended = stop_after_epoch_1
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        pass
    run_dir = Path(window.last_result.run_dir)
    assert window.last_result.epochs_completed == 1 and (run_dir / "checkpoint.safetensors").is_file()
    assert window.continue_action.isEnabled()

    assert window.continue_run(run_dir)
    assert not window.continue_action.isEnabled()
    assert window.plots.val_acc.n == 1  # the plots show the epoch trained before the stop, at once
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        pass
    assert window.last_error is None and window.last_result.epochs_completed == 3
    assert json.loads((run_dir / "summary.json").read_text())["resumed_from_epoch"] == 1
    qtbot.waitUntil(lambda: not tasks.running(), timeout=30_000)  # the Results tab reads the run in a task

    assert not window.continue_run(tmp_path)  # not a run folder: a message, nothing started
    assert not window.is_running() and "Cannot continue the run" in window.log_panel.toPlainText()


def test_a_run_started_right_after_stop_and_join_is_not_taken_for_the_old_one(window, qtbot):
    _start_and_wait_for_a_batch(window, qtbot)
    assert window.stop_and_join()
    assert window.start()  # before the old run's queued signals (returned, finished) are delivered
    new = window.run
    qtbot.wait(300)  # now they are
    assert window.run is new and window.is_running() and window.last_result is None
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        window.stop()
    assert window.last_result.stopped_by_user and window.run is None
    qtbot.waitUntil(lambda: not tasks.running(), timeout=30_000)  # the Results tab may read the run in a task
