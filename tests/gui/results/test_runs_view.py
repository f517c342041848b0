"""Runs, side by side: the Runs tab lists the project's runs with their settings and results; two selected show
their validation curves and the settings that differ with their accuracies; a run opens in Results; and Run >
Recent Runs lists the same runs."""

from __future__ import annotations

import pytest

from engine.runs import catalog
from engine.runs import folder as run
from gui.results.window import RESULTS, RUNS
from tests.gui.results.conftest import wait_loaded
from tests.imagesets import shapes_project


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same project at two learning rates, in one output folder: (project, [older, newer])."""
    base = tmp_path_factory.mktemp("two")
    project = shapes_project(base, train__epochs=2, train__device="cpu", train__amp=False)
    first, _ = run.train(project, base / "runs" / "slow")
    faster = project.copy()
    faster.set("train.lr", 0.05)
    second, _ = run.train(faster, base / "runs" / "fast")
    return project, [first, second]


def _runs_tab(window, qtbot, project):
    window.set_project(project)
    window.centre_tabs.setCurrentIndex(RUNS)
    view = window.runs_view
    qtbot.waitUntil(lambda: not view.is_busy() and view.model.rowCount() > 0, timeout=30_000)
    return view


def test_the_runs_tab_lists_the_projects_runs_with_settings_and_results(window, qtbot, two_runs):
    project, (first, second) = two_runs
    view = _runs_tab(window, qtbot, project)
    records = catalog.project_runs(project)
    assert [r.folder for r in view.model.records] == [r.folder for r in records] == [second, first]
    row = view.model.cells(records[0])
    assert row[0] == "fast" and row[2] == "finished" and row[3] == "thaw_digits_cnn" and row[4] == "full"
    assert row[5] == "2/2" and row[6] == f"{records[0].best_val_accuracy:.1%}"
    assert row[7] == f"{records[0].evaluation.accuracy:.1%} (validation)"
    assert view.title.text().startswith("2 runs in ")


def test_two_runs_side_by_side_overlay_their_curves_and_show_what_differs(window, qtbot, two_runs):
    project, _ = two_runs
    view = _runs_tab(window, qtbot, project)
    view.select([0])
    assert view.hint.isVisibleTo(view) and view.differences.rowCount() == 0
    assert view.open_button.isEnabled()
    view.select([0, 1])
    records = view.selected()
    assert len(records) == 2 and not view.hint.isVisibleTo(view)
    curves = view.plot.getPlotItem().listDataItems()
    assert [c.name() for c in curves] == [r.name for r in records]
    for curve, record in zip(curves, records, strict=True):
        epochs = catalog.history(record.folder, record.summary)
        assert list(curve.yData) == pytest.approx([100 * e.val_accuracy for e in epochs])
    table = view.differences
    rows = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
    assert rows == [*catalog.differing(records), "best val accuracy", "held-out accuracy"]
    assert rows[0] == "train.lr"
    assert [table.item(0, c).text() for c in range(2)] == ["0.05", "0.01"]
    assert table.item(1, 0).text() == f"{records[0].best_val_accuracy:.1%}"
    assert not view.open_button.isEnabled()  # one run at a time goes to Results


def test_a_run_chosen_there_opens_in_results(window, qtbot, two_runs):
    project, (first, _) = two_runs
    view = _runs_tab(window, qtbot, project)
    view.select([1])
    view.open_button.click()
    assert window.shown_run == first and window.centre_tabs.currentIndex() == RESULTS
    wait_loaded(qtbot, window.results_view)
    assert window.plots.val_acc.n == 2


def test_recent_runs_menu_lists_the_project_runs(window, two_runs):
    project, (first, second) = two_runs
    window.set_project(project)
    window.recent_runs_menu.aboutToShow.emit()
    names = [a.text() for a in window.recent_runs_menu.actions()]
    assert names == ["fast (finished)", "slow (finished)"]
    window.recent_runs_menu.actions()[1].trigger()
    assert window.shown_run == first


def test_opening_another_project_while_the_runs_tab_is_shown_lists_its_runs(window, qtbot, two_runs, tmp_path):
    project, _ = two_runs
    view = _runs_tab(window, qtbot, project)
    other = project.copy()
    other.set("train.out_dir", str(tmp_path / "elsewhere"))
    window.set_project(other)
    qtbot.waitUntil(lambda: not view.is_busy() and view.model.rowCount() == 0, timeout=30_000)
    assert view.title.text().startswith("No runs yet in ") and "elsewhere" in view.title.text()
