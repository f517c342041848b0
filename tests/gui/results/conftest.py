"""A finished run (the demo CNN on drawn shapes, evaluated on its validation split) shared by the Results tests
that only read it, and a way to wait for the Results view."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """(run folder, its project): 3 classes x 10 images, 3 epochs; its evaluation.json covers 8 images."""
    from engine.runs import folder as run
    from tests.imagesets import shapes_project

    base = tmp_path_factory.mktemp("finished")
    project = shapes_project(base, per_class=10, train__epochs=3, train__device="cpu", train__amp=False)
    run_dir, _ = run.train(project, base / "runs" / "first")
    return run_dir, project


def wait_loaded(qtbot, view, timeout: int = 30_000) -> None:
    """Until the Results view has read the run it was told to show."""
    qtbot.waitUntil(lambda: view.shown is not None and not view.is_loading(), timeout=timeout)
