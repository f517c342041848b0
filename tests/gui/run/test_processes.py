"""Run in Several Processes...: the dialog shows what the engine allows and what each other machine runs; a run
in another process (the real command line in a QProcess) shows in the window as a run in its own thread does;
and, slow, two processes under torchrun started from the window."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication

from engine import project as projects
from engine.distributed.launch import MAIN_SCRIPT
from gui.naming import interactive_widgets
from gui.run.launcher import ProcessesDialog
from gui.run.process import RunFailed
from tests.gui.test_names import DOC


def test_the_dialog_offers_what_the_engine_allows(qtbot, project_factory, tmp_path):
    project = project_factory(train__batch_size=12)
    dialog = ProcessesDialog(project, None)
    qtbot.addWidget(dialog)
    assert dialog.processes.value() == 2 and dialog.start.isEnabled() and dialog.problem.text() == ""
    assert not dialog.others.isVisibleTo(dialog)
    dialog.processes.setValue(5)
    assert "12 images per step do not divide among 5 processes" in dialog.problem.text()
    assert not dialog.start.isEnabled()
    dialog.processes.setValue(2)
    dialog.machines.setValue(2)
    assert "save the project first" in dialog.problem.text() and not dialog.start.isEnabled()

    saved = tmp_path / "p.thaw.toml"
    projects.save(project, saved)
    dialog = ProcessesDialog(project, saved)
    qtbot.addWidget(dialog)
    dialog.machines.setValue(3)
    dialog.endpoint.setText("10.0.0.1:29400")
    assert dialog.start.isEnabled() and dialog.others.isVisibleTo(dialog)
    lines = dialog.others.toPlainText().splitlines()
    assert lines == [f"python {MAIN_SCRIPT} train {saved} --nproc-per-node 2 --nnodes 3 --node-rank {i} "
                     f"--rdzv-endpoint 10.0.0.1:29400" for i in (1, 2)]
    dialog.copy.click()
    assert QApplication.clipboard().text() == "\n".join(lines)
    dialog.endpoint.setText("10.0.0.1")
    assert "--rdzv-endpoint HOST:PORT" in dialog.problem.text() and not dialog.start.isEnabled()


def test_the_dialogs_controls_are_named_and_listed(qtbot, project_factory):
    dialog = ProcessesDialog(project_factory(), None)
    qtbot.addWidget(dialog)
    rows = ["| objectName | accessible name | kind |", "|---|---|---|"]
    rows += [f"| `{w.objectName()}` | {w.accessibleName()} | {type(w).__name__} |" for w in interactive_widgets(dialog)]
    assert len(rows) >= 8 and all(w.objectName() and w.accessibleName() for w in interactive_widgets(dialog))
    assert "\n".join(rows) + "\n" in DOC.read_text(encoding="utf-8"), "docs/gui-names.md: the dialog's table " \
        "should read:\n\n" + "\n".join(rows)


def _command(project, run_dir) -> list[str]:
    path = run_dir.parent / "p.thaw.toml"
    projects.save(project, path)
    return [sys.executable, str(MAIN_SCRIPT), "train", str(path), "--out", str(run_dir)]


def test_a_run_in_another_process_shows_as_a_run_in_this_one(window, qtbot, project_factory, tmp_path):
    project = project_factory(classes=("circle", "square"), train__batch_size=4, train__activity_every=2,
                              train__activity_budget=0.0)
    window.set_project(project)
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    cleaned = []
    run_dir = tmp_path / "run"
    with qtbot.waitSignal(window.run_finished, timeout=240_000):
        window.runs.launch_processes(project, _command(project, run_dir), run_dir, 1, lambda: cleaned.append(1))
        window.update_start_state()
        assert window.stop_action.isEnabled() and not window.pause_action.isEnabled()
        assert not window.processes_action.isEnabled() and window.freeze_panel.is_read_only()
    result = window.last_result
    assert result is not None and result.epochs_completed == 2, window.last_error
    assert window.plots.train_loss.n == 2 * 3 and window.plots.val_acc.n == 2  # 12 images in batches of 4
    assert "best val accuracy" in window.summary.label.text() and window.summary.isVisibleTo(window)
    assert "epoch 2/2" in window.log_panel.toPlainText() and window.progress.format().startswith("Done")
    assert cleaned == [1] and window.start_action.isEnabled()
    assert window.plots.activity.curves["head"][1].n == 3  # which layers learn, read from events.jsonl too
    assert window.freeze_panel.tree_model.activity


def test_a_failing_command_is_one_message(window, qtbot, project_factory, tmp_path):
    project = project_factory()
    project.set("data.train", str(tmp_path / "gone"))
    with qtbot.waitSignal(window.run_finished, timeout=240_000):
        window.runs.launch_processes(project, _command(project, tmp_path / "run"), tmp_path / "run", 2, lambda: None)
    assert isinstance(window.last_error, RunFailed) and "gone" in str(window.last_error)
    assert window.error_box is not None and "gone" in window.error_box.text()
    assert window.progress.format() == "Failed"


class ClickStart(QObject):
    """Clicks Start on the processes dialog once it shows."""

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Show and isinstance(obj, ProcessesDialog):
            QTimer.singleShot(0, obj, obj.start.click)
        return False


@pytest.mark.slow
def test_two_processes_under_torchrun_from_the_window(window, qtbot, project_factory):
    window.set_project(project_factory(classes=("circle", "square"), train__batch_size=4))
    qtbot.waitUntil(lambda: window.processes_action.isEnabled(), timeout=30_000)
    clicker = ClickStart()
    QApplication.instance().installEventFilter(clicker)
    try:
        with qtbot.waitSignal(window.run_finished, timeout=600_000):
            window.processes_action.trigger()
    finally:
        QApplication.instance().removeEventFilter(clicker)
    result = window.last_result
    assert result is not None and result.epochs_completed == 2, window.last_error
    assert window.plots.train_loss.n == 2 * 3 and window.plots.val_acc.n == 2
    assert "epoch 2/2" in window.log_panel.toPlainText() and "x 2 processes" in window.device_label.text()
    run_dir = Path(window.summary.run_folder_url().toLocalFile())
    assert json.loads((run_dir / "summary.json").read_text())["world_size"] == 2
