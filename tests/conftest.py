"""Test set-up: headless Qt, isolated data/torch-hub folders, one torch thread, no QThread left running after a
test; and the set-up the tests share: tiny projects (`project_factory`), a main window and answers to its
questions."""

from __future__ import annotations

import gc
import os
import sys

import pytest
import torch
import torchvision  # noqa: F401 (imported before gc.freeze below)

from tests.imagesets import SHAPES, shapes_project

os.environ["QT_QPA_PLATFORM"] = "offscreen"
gc.freeze()  # the modules imported so far live to the end: the per-test collection below skips them (0.2 -> 0.001 s)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Tests never read or write the person's own data folder, torch hub cache or Hugging Face cache."""
    monkeypatch.setenv("THAW_DATA_DIR", str(tmp_path_factory.mktemp("thaw-data")))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf-home")))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    yield


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests train on one intra-op thread: tiny tensors gain nothing from more, and on a shared machine extra
    threads only fight each other (tenfold slower under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _no_qthread_left_running():
    """Fail any test that leaves a QThread started by the GUI still running; then free the test's garbage here,
    in the GUI thread (see gui/tasks.py), not in the next test's training thread."""
    yield
    gc.collect()
    tasks = sys.modules.get("gui.tasks")
    if tasks is not None:
        left = tasks.running()
        for t in left:
            t.quit()
            t.wait(5000)
        assert not left, f"{len(left)} QThread(s) left running by this test"


@pytest.fixture
def project_factory(tmp_path):
    """Makes tiny projects in the test's folder: the demo CNN from scratch on drawn shapes at 32 px (the images
    are written on first use), 2 quick epochs. Keys as keyword arguments with '__' for '.', e.g.
    ``project_factory(train__epochs=3)``; `classes` and `per_class` choose the images."""

    def make(per_class: int = 8, classes: tuple[str, ...] = SHAPES, **settings):
        return shapes_project(tmp_path, per_class, classes, **settings)

    return make


@pytest.fixture
def weights_server(tmp_path):
    """A real HTTP server on 127.0.0.1 over tmp_path/served (tests/published.py): (base URL, the folder)."""
    from tests.published import serving

    served = tmp_path / "served"
    served.mkdir()
    with serving(served) as base:
        yield base, served


@pytest.fixture
def answer(qapp):
    """Answer the window's yes/no/save questions without a person: the real box shows and `answer["button"]`
    (Discard unless a test says otherwise) is clicked on it (tests/gui/answers.py), each question's title
    recorded in `answer["asked"]`."""
    from PySide6.QtWidgets import QMessageBox

    from tests.gui.answers import Answers

    reply = {"button": QMessageBox.StandardButton.Discard, "asked": []}
    answers = Answers(reply)
    yield reply
    answers.remove()


@pytest.fixture
def window(qtbot, answer):
    """A main window on a new project; stopped, and closed without saving, at the end of the test."""
    from gui.main_window import MainWindow

    w = MainWindow()  # closed here rather than by qtbot.addWidget: nobody is there to answer "save changes?"
    yield w
    w.stop_and_join()
    w.dirty = False
    w.close()
    w.deleteLater()
