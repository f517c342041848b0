"""The export dialog acts on the run the window shows: File > Export Model... and the Results tab's Export...
open one dialog on `shown_run`, and its run folder follows `shown_run_changed` until the person chooses their
own."""

from __future__ import annotations

import shutil

from PySide6.QtCore import Qt

from tests.gui.results.conftest import wait_loaded


def test_the_dialog_opens_on_the_run_shown_and_follows_it(window, qtbot, finished_run, tmp_path):
    first = finished_run[0]
    second = tmp_path / "second"
    shutil.copytree(first, second)
    assert window.open_run(first)
    wait_loaded(qtbot, window.results_view)
    window.export_action.trigger()
    dialog = window.export_dialog
    assert dialog.isVisible() and dialog.run_edit.text() == str(window.shown_run) == str(first)
    assert dialog.dest_edit.text() == str(first / "export")

    with qtbot.waitSignal(window.shown_run_changed):
        assert window.open_run(second)
    assert dialog.run_edit.text() == str(second) and dialog.dest_edit.text() == str(second / "export")

    chosen = str(tmp_path / "my-run")
    dialog.run_edit.setText(chosen)  # the person's own choice is kept when the window shows another run
    with qtbot.waitSignal(window.shown_run_changed):
        assert window.open_run(first)
    assert dialog.run_edit.text() == chosen


def test_the_results_tabs_export_button_opens_the_same_dialog(window, qtbot, finished_run):
    assert window.export_dialog is None
    window.export_action.trigger()
    dialog = window.export_dialog
    assert dialog.run_edit.text() == "" and not dialog.export_button.isEnabled()  # no run shown yet
    dialog.close()
    assert window.open_run(finished_run[0])  # the empty field follows the run now shown
    view = window.results_view
    wait_loaded(qtbot, view)
    assert view.export_button.isVisibleTo(view) and view.export_button.isEnabled()
    qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    assert window.export_dialog is dialog and dialog.isVisible()
    assert dialog.run_edit.text() == str(finished_run[0]) and dialog.export_button.isEnabled()
