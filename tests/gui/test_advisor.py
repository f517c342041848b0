"""The Suggest button by the presets: measured in the background, a bar per cut point beside the checklist, the
suggestion applied as one undoable edit, and said again when the project changed."""

from __future__ import annotations

from PySide6.QtCore import QSize

from tests.gui.test_fits_the_screen import unreadable


def suggest(window, qtbot):
    window.freeze_panel.suggest_button.click()
    assert not window.freeze_panel.suggest_button.isEnabled()  # one measurement at a time
    qtbot.waitUntil(lambda: not window.advisor.is_measuring() and window.advisor.task is None, timeout=60_000)
    return window.freeze_panel.advice


def test_suggest_shows_a_bar_per_cut_point_and_apply_is_one_undo_step(window, qtbot, project_factory):
    window.set_project(project_factory(model__weights="pretrained", freeze__preset="full", train__lr=0.05))
    window.show()
    qtbot.waitUntil(lambda: window.data_panel.sources is not None, timeout=30_000)
    column = suggest(window, qtbot)
    advice = window.advisor.advice
    assert column.isVisible() and column.apply_button.isEnabled()
    rows = column.bars.rows
    assert [r["where"] for r in rows] == ["after stem", "after block1", "after block2", "head's input"]  # as the tree
    assert sum(r["suggested"] for r in rows) == 1 and "Suggested: " in column.suggestion.text()
    assert "thuml/LogME#28" in column.evidence.text() and "Measured on 18 training images" in column.status.text()

    column.apply_button.click()
    plan = advice.plan
    assert (window.project.freeze.preset, window.project.train.lr) == (plan.preset, plan.lr)
    assert window.freeze_panel.preset_buttons[plan.preset].isChecked()
    assert window.training_panel.lr.text() == f"{plan.lr:g}"
    assert window.history.stack.count() == 1 and window.dirty
    window.undo_action.trigger()
    assert (window.project.freeze.preset, window.project.train.lr) == ("full", 0.05)
    assert window.freeze_panel.preset_buttons["full"].isChecked() and window.training_panel.lr.text() == "0.05"
    window.redo_action.trigger()
    assert window.project.freeze.preset == plan.preset


def test_a_suggestion_measured_before_the_data_changed_cannot_be_applied(window, qtbot, project_factory, tmp_path):
    window.set_project(project_factory(model__weights="pretrained"))
    qtbot.waitUntil(lambda: window.data_panel.sources is not None, timeout=30_000)
    column = suggest(window, qtbot)
    assert column.apply_button.isEnabled()
    window.project.set("data.val_fraction", 0.5)
    window.apply_settings({"data.image_size": 40})  # any recorded edit checks it
    assert not column.apply_button.isEnabled() and "Suggest again" in column.status.text()
    preset = window.project.freeze.preset
    window.advisor.apply()
    assert window.project.freeze.preset == preset


def test_random_weights_suggest_training_everything(window, qtbot, project_factory):
    window.set_project(project_factory(freeze__preset="feature_extraction"))
    column = suggest(window, qtbot)
    assert column.bars.rows == [] and "from scratch" in column.suggestion.text()
    column.apply_button.click()
    assert window.project.freeze.preset == "full"


def test_what_cannot_be_measured_is_said_in_the_column(window, qtbot):
    window.new_project()  # no data
    column = suggest(window, qtbot)
    assert not column.isHidden() and column.status.text().startswith("Could not measure: ")
    assert not column.apply_button.isEnabled()


def test_the_column_fits_at_1280x720(window, qtbot):
    assert window.open_demo("inductive")
    window.resize(1280, 720)
    window.show()
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    suggest(window, qtbot)
    qtbot.wait(50)
    assert window.size() == QSize(1280, 720) and window.minimumSizeHint().width() <= 1280
    assert unreadable(window.freeze_panel) == []
    bars = window.freeze_panel.advice.bars
    assert bars.isVisible() and bars.width() >= 180


def test_suggest_is_off_while_a_run_holds_the_project(window, project_factory):
    window.set_project(project_factory(model__weights="pretrained"))
    window.freeze_panel.set_read_only(True)
    assert not window.freeze_panel.suggest_button.isEnabled()
