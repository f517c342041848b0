"""Test set-up: headless Qt, isolated data/torch-hub folders, and no QThread left running after a test."""

from __future__ import annotations

import os
import sys

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Tests never read or write the person's own data folder or torch hub cache."""
    monkeypatch.setenv("THAW_DATA_DIR", str(tmp_path_factory.mktemp("thaw-data")))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
    yield


@pytest.fixture(autouse=True)
def _no_qthread_left_running():
    """Fail any test that leaves a QThread started by the GUI still running."""
    yield
    threads = sys.modules.get("gui.threads")
    if threads is not None:
        left = threads.running()
        for t in left:
            t.quit()
            t.wait(5000)
        assert not left, f"{len(left)} QThread(s) left running by this test"
