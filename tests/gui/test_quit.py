"""Quitting during a run never leaves a process behind: "stop and quit" stops the run within seconds even in a
slow batch (the engine checks the stop flag between layers); where a batch cannot be interrupted at all, the
real app ends its process all the same (gui/app.py). Either way the run folder keeps the last completed
epoch, resumable."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from engine import project as projects
from engine.runs import checkpoint
from engine.runs import folder as run
from engine.train import loop
from gui import tasks
from gui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]
LAYER_SECONDS = 0.5  # each of the demo CNN's 9 layers: a batch takes ~4.5 s instead of milliseconds


def tiny(project_factory, epochs: int):
    """2 classes x 8 images, 3 steps of 4 per epoch."""
    return project_factory(classes=("circle", "square"), train__epochs=epochs, train__batch_size=4,
                           train__device="cpu", train__amp=False)


def slow_after_epoch_1(monkeypatch) -> threading.Event:
    """After epoch 1, every layer of the model sleeps `LAYER_SECONDS` in each training batch; the event is set
    once such a batch has begun."""
    slow = threading.Event()
    real = loop.assemble

    def assemble(*args, **kwargs):
        built = real(*args, **kwargs)
        calls = []
        built.model.register_forward_pre_hook(lambda m, _a: calls.append(1) if m.training else None)
        for module in built.model.modules():
            if next(module.parameters(recurse=False), None) is not None:
                module.register_forward_pre_hook(lambda m, _a: (slow.set(), time.sleep(LAYER_SECONDS))
                                                 if m.training and len(calls) > 3 else None)
        return built

    monkeypatch.setattr(loop, "assemble", assemble)
    return slow


def test_stop_and_quit_in_a_slow_batch_ends_the_run_within_seconds(qtbot, tmp_path, project_factory, answer,
                                                                    monkeypatch):
    slow = slow_after_epoch_1(monkeypatch)
    window = MainWindow()
    window.set_project(tiny(project_factory, epochs=50))
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    assert window.start()
    qtbot.waitUntil(slow.is_set, timeout=120_000)
    answer["button"] = QMessageBox.StandardButton.Yes

    began = time.monotonic()
    assert window.close()
    took = time.monotonic() - began
    assert answer["asked"] == ["Training is running"]
    assert took < 5 and not tasks.running() and not window.is_running()
    window.deleteLater()

    (run_dir,) = (tmp_path / "runs").iterdir()
    kept = checkpoint.read(run_dir)
    assert kept.epoch == 1  # the slow batch was thrown away; epoch 1's checkpoint is there to continue from


def test_the_app_ends_within_seconds_when_a_batch_cannot_be_interrupted(tmp_path, project_factory):
    """The real app in its own process (tests/gui/quit_mid_run.py): the batch would sleep two minutes, the
    process is gone within seconds of "stop and quit", with exit status 0, and the run resumes."""
    project = tiny(project_factory, epochs=3)
    path = tmp_path / "shapes.thaw.toml"
    projects.save(project, path)
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "tests.gui.quit_mid_run", str(path)], cwd=ROOT, env=env,
                                stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 240
        while "closing" not in out.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "closing" in out.read_text(), err.read_text()[-3000:]
        asked = time.monotonic()
        proc.wait(timeout=10)
        took = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.read_text()[-3000:]
    assert took < 10
    assert "ended with the process" in err.read_text()

    (run_dir,) = (tmp_path / "runs").iterdir()
    assert checkpoint.read(run_dir).epoch == 1
    _, result = run.resume(projects.load(path), run_dir)  # the folder's lock went with the process
    assert len(result.history) == 3 and not result.stopped_by_user
