"""File > Export Model...: the dialog on the run just finished, exporting in the background and showing the
verification; what it says when it cannot export, when stopped, and without the export extra; its names."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from gui import export_dialog as module
from gui import tasks
from gui.export_dialog import ExportDialog
from tests.gui.test_main_window import tiny_project
from tests.gui.test_names import assert_named_and_listed


def export_and_wait(dialog, qtbot, timeout=300_000):
    with qtbot.waitSignal(dialog.task.finished, timeout=timeout):
        pass


def test_export_model_opens_on_the_run_just_finished_and_verifies_it(window, qtbot, project_factory):
    window.set_project(tiny_project(project_factory))
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    with qtbot.waitSignal(window.run_finished, timeout=120_000):
        assert window.start()
    run_dir = window.last_result.run_dir
    file_menu = window.findChild(type(window.recent_menu), "fileMenu")
    assert window.export_action in file_menu.actions()
    window.export_action.trigger()
    dialog = window.export_dialog
    assert dialog.isVisible() and dialog.run_edit.text() == run_dir
    assert dialog.dest_edit.text() == f"{run_dir}/export" and dialog.formats() == ["onnx", "pt2", "safetensors"]
    opened = []
    dialog.opener = opened.append
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.is_running() and not dialog.export_button.isEnabled() and dialog.close_button.text() == "Stop"
    export_and_wait(dialog, qtbot)
    assert dialog.error is None, dialog.error
    text = dialog.outcome.text()
    assert "Exported and verified" in text and "onnx: verified against PyTorch on 4 images" in text  # 4 held out
    assert "pt2: verified" in text and dialog.close_button.text() == "Close" and dialog.export_button.isEnabled()
    report = json.loads((dialog.result.path / "export.json").read_text())
    assert report["verification"]["onnx"]["verified"] and report["run"] == run_dir
    qtbot.mouseClick(dialog.show_button, Qt.MouseButton.LeftButton)
    assert [u.toLocalFile() for u in opened] == [f"{run_dir}/export"]
    dialog.close()
    assert not tasks.running()


def test_what_cannot_be_exported_is_said_in_the_dialog_and_nothing_is_written(qtbot, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    dialog = ExportDialog(tmp_path / "mine")
    qtbot.addWidget(dialog)
    assert dialog.dest_edit.text() == str(tmp_path / "mine" / "export")
    dialog.start()
    export_and_wait(dialog, qtbot)
    assert "Cannot export" in dialog.outcome.text() and "model.safetensors" in dialog.outcome.text()
    assert not dialog.show_button.isEnabled() and sorted(p.name for p in tmp_path.rglob("*")) == ["mine", "notes.txt"]


def test_the_destination_follows_the_run_until_the_person_types_one(qtbot, tmp_path):
    dialog = ExportDialog("")
    qtbot.addWidget(dialog)
    assert not dialog.export_button.isEnabled() and dialog.dest_edit.text() == ""
    dialog.run_edit.setText(str(tmp_path / "run-a"))
    assert dialog.dest_edit.text() == str(tmp_path / "run-a" / "export") and dialog.export_button.isEnabled()
    dialog.dest_edit.setText(str(tmp_path / "elsewhere"))
    dialog.run_edit.setText(str(tmp_path / "run-b"))
    assert dialog.dest_edit.text() == str(tmp_path / "elsewhere")
    for box in dialog.boxes.values():
        box.setChecked(False)
    assert not dialog.export_button.isEnabled()  # no format, nothing to do


def test_stop_ends_the_export_with_nothing_written_and_closes(qtbot, project_factory, tmp_path):
    from engine.runs import folder as run

    run_dir, _ = run.train(tiny_project(project_factory, epochs=1), tmp_path / "run")
    dialog = ExportDialog(run_dir)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start()
    dialog.reject()  # Stop: the export ends after its current step
    assert dialog.isVisible()
    export_and_wait(dialog, qtbot)
    assert "Stopped: nothing was written" in dialog.outcome.text() and not dialog.isVisible()
    assert not (run_dir / "export").exists() and not [p for p in run_dir.iterdir() if p.name.endswith(".partial")]


def test_without_the_export_extra_the_dialog_says_how_to_install_it(qtbot, monkeypatch):
    monkeypatch.setattr(module, "missing_packages", lambda: ["onnxscript", "onnxruntime"])
    dialog = ExportDialog("")
    qtbot.addWidget(dialog)
    assert not dialog.boxes["onnx"].isEnabled() and not dialog.boxes["onnx"].isChecked()
    assert dialog.missing.isVisibleTo(dialog) and 'pip install "thaw[export]"' in dialog.missing.text()
    assert "onnxscript, onnxruntime" in dialog.missing.text()
    dialog.run_edit.setText("/somewhere/run")
    assert dialog.formats() == ["pt2", "safetensors"] and dialog.export_button.isEnabled()


def test_the_dialogs_controls_are_named_and_listed(qtbot):
    dialog = ExportDialog("")
    qtbot.addWidget(dialog)
    assert_named_and_listed(dialog, "the export dialog", 10)
