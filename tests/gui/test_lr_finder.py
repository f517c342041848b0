"""The learning-rate finder's dialog: "Find..." by the learning rate opens it, the sweep runs in a real thread and
draws as it goes, the suggestions are marked, "Use" or a click on the curve sets train.lr as one undoable edit; it
stops when asked and when closed, and says what is wrong with a project that cannot run."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from gui import tasks
from gui.lr_finder.dialog import LrFinderDialog


@pytest.fixture
def shown(window, qtbot, project_factory):
    window.set_project(project_factory(freeze__preset="feature_extraction", train__lr=0.01))
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    return window


def test_find_sweeps_marks_the_suggestions_and_use_sets_the_rate_undoably(shown, qtbot):
    w = shown
    qtbot.mouseClick(w.training_panel.find_lr, Qt.MouseButton.LeftButton)
    dialog = w.lr_finder
    assert isinstance(dialog, LrFinderDialog) and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.result is not None and not dialog.is_running(), timeout=120_000)
    result = dialog.result
    assert result.feature_cache and len(result.lrs) == len(dialog.raw.getData()[0]) > 10
    assert dialog.choice_buttons["valley"].isChecked() and dialog.chosen == result.suggestions["valley"]
    for name, lr in result.suggestions.items():
        assert 10 ** dialog.markers[name].getData()[0][0] == pytest.approx(lr)  # drawn on a log10 x axis
        assert f"{lr:.2g}" in dialog.choice_buttons[name].text()
    assert dialog.use_button.text() == f"Use {result.suggestions['valley']:.2g}"

    qtbot.mouseClick(dialog.choice_buttons["steepest"], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert w.project.train.lr == result.suggestions["steepest"]
    assert w.training_panel.lr.text() == f"{result.suggestions['steepest']:g}"
    assert w.undo_action.text() == "&Undo train.lr"

    dialog.pick(3.14e-4)  # what a click on the curve there does: two significant digits
    assert w.project.train.lr == 3.1e-4 and dialog.chosen == 3.1e-4
    assert not any(b.isChecked() for b in dialog.choice_buttons.values())
    w.undo_action.trigger()
    w.undo_action.trigger()
    assert w.project.train.lr == 0.01
    dialog.close()
    assert not tasks.running()


def test_a_click_on_the_curve_sets_that_rate(shown, qtbot):
    dialog = LrFinderDialog(shown.project.copy(), shown, steps=30)
    picked = []
    dialog.use.connect(picked.append)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.result is not None and not dialog.is_running(), timeout=120_000)
    vb = dialog.plot.getPlotItem().vb
    x = math.log10(dialog.result.lrs[len(dialog.result.lrs) // 2])
    scene = vb.mapViewToScene(QPointF(x, sum(vb.viewRange()[1]) / 2))
    view = dialog.plot.mapFromScene(scene)
    qtbot.mouseClick(dialog.plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(view.x(), view.y()))
    qtbot.waitUntil(lambda: bool(picked), timeout=5_000)
    assert math.log10(picked[0]) == pytest.approx(x, abs=0.05)
    dialog.close()


def test_stop_ends_the_sweep_early_and_closing_waits_for_it(shown, qtbot):
    project = shown.project.copy()
    project.set("freeze.preset", "full")  # the whole model: slower than the cached head
    dialog = LrFinderDialog(project, shown, steps=100_000)
    dialog.show()
    qtbot.waitUntil(lambda: len(dialog._lrs) >= 3, timeout=120_000)
    qtbot.mouseClick(dialog.again, Qt.MouseButton.LeftButton)  # "Stop"
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=30_000)
    assert dialog.result is not None and dialog.result.ended == "stopped" and dialog.again.text() == "Sweep again"
    qtbot.mouseClick(dialog.again, Qt.MouseButton.LeftButton)  # and again
    qtbot.waitUntil(lambda: len(dialog._lrs) >= 1, timeout=120_000)
    dialog.close()
    assert not dialog.is_running() and not tasks.running()


def test_a_project_that_cannot_run_says_why(window, qtbot):
    dialog = LrFinderDialog(window.project.copy(), window)  # a new project: no data yet
    dialog.show()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=60_000)
    assert "data.train" in dialog.status.text() and dialog.result is None and not dialog.use_button.isEnabled()
    dialog.close()
