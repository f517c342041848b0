"""The transfer study's window: settings, one progress bar, the table and the overlaid validation curves; a stop
keeps what is done and Start continues."""

from __future__ import annotations

import json

from tests.gui.test_fits_the_screen import unreadable


def open_dialog(window, project, tmp_path, recipes="fe,last1", seeds=1, per_class="3"):
    window.set_project(project)
    window.study_action.trigger()
    dialog = window.study
    assert dialog.isVisible() and dialog.folder.text().startswith(str(project.resolve("runs")))
    dialog.recipes.setText(recipes)
    dialog.seeds.setValue(seeds)
    dialog.per_class.setText(per_class)
    dialog.folder.setText(str(tmp_path / "study"))
    return dialog


def tiny(project_factory):
    return project_factory(model__weights="pretrained", data__test_fraction=0.25, train__epochs=2)


def test_a_study_runs_in_the_background_and_shows_its_table_and_curves(window, qtbot, project_factory, tmp_path):
    dialog = open_dialog(window, tiny(project_factory), tmp_path, seeds=2)
    assert dialog.start()
    assert dialog.stop_button.isEnabled() and not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.is_running() and dialog.task is None, timeout=120_000)
    state = json.loads((tmp_path / "study" / "study.json").read_text())
    runs = sum(len(c["runs"]) for c in state["cells"])
    assert dialog.progress.value() == 1000 and dialog.progress.format() == f"{runs} of {runs} runs"
    labels = [dialog.table.item(i, 0).text() for i in range(dialog.table.rowCount())]
    assert {"feature extraction", "last 1 block"} <= set(labels)
    assert any(dialog.table.item(i, 6).text().startswith("\u2605") for i in range(dialog.table.rowCount()))
    assert "Test accuracy over 2 of 2 seeds" in dialog.summary.text() and "gap" in dialog.summary.text()
    curves = dialog.curves.curves
    assert set(curves) == set(labels) and all(series.n == 2 for _, series in curves.values())  # 2 epochs each
    assert dialog.group.currentText() == "3 images per class"
    qtbot.waitExposed(dialog)
    assert dialog.width() <= 1280 and dialog.height() <= 720 and unreadable(dialog) == []


def test_settings_the_engine_refuses_start_nothing(window, project_factory, tmp_path):
    dialog = open_dialog(window, tiny(project_factory), tmp_path, per_class="0")
    assert not dialog.start() and dialog.status.text().startswith("Cannot start: --per-class")
    dialog.per_class.setText("3")
    dialog.recipes.setText("last7")
    assert not dialog.start() and "last3" in dialog.status.text()
    assert dialog.task is None and not (tmp_path / "study").exists()


def test_stopped_then_continued(window, qtbot, project_factory, tmp_path):
    dialog = open_dialog(window, tiny(project_factory), tmp_path, recipes="fe,last1,full", per_class="all")
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.progress.format().startswith("1 of"), timeout=120_000)
    dialog.stop_button.click()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
    state = json.loads((tmp_path / "study" / "study.json").read_text())
    done = [r for r in state["cells"][0]["runs"].values() if r["accuracy"] is not None]
    assert 1 <= len(done) < 3 and "Start continues it" in dialog.status.text()
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=120_000)
    assert dialog.progress.value() == 1000 and dialog.table.rowCount() == 3


def test_a_study_folder_is_shown_again(window, qtbot, project_factory, tmp_path):
    dialog = open_dialog(window, tiny(project_factory), tmp_path, recipes="fe")
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=120_000)
    dialog.close()
    window.study = None
    window.open_study()
    again = window.study
    again.folder.setText(str(tmp_path / "study"))
    again.load_button.click()
    assert again.table.rowCount() >= 1 and again.table.item(0, 0).text() == "feature extraction"
