"""Run > Run on N GPUs... (Run in Several Processes... on a machine without several GPUs, where it is there to try
the set-up on the CPU): how many processes, on how many machines, and the command each other machine runs.

The engine says what may run (`engine.distributed.launch`: the launch's own checks, the device, a batch size
the processes can share) and builds the commands; the dialog shows them. `run_in_processes` starts the run:
this machine is machine 0, whose rank 0 writes the run folder the window follows (`gui.run.process`).
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine import project as projects
from engine.distributed import launch
from engine.errors import ThawError
from engine.project import Project
from engine.runs.folder import reserve_run_dir, resolved
from gui.naming import named
from gui.text import WrappingLabel

PORT = 29400


def action_text() -> str:
    gpus = launch.local_gpus()
    return f"Run on {gpus} GPUs..." if gpus > 1 else "Run in Several Processes..."


class ProcessesDialog(QDialog):
    """The launch of `project` in several processes; `project_file` is its saved file (None when unsaved or
    changed since: several machines need one file that each of them reads)."""

    def __init__(self, project: Project, project_file: Path | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("processesDialog")
        self.setWindowTitle(action_text().rstrip("."))
        self.project, self.project_file = project, project_file
        gpus = launch.local_gpus()
        intro = WrappingLabel("Thaw runs the command line under torchrun: the processes train the project together "
                              "(DistributedDataParallel) and the window follows the run through its run folder.")
        device = WrappingLabel(f"This machine has {gpus} GPUs: one process each, NCCL between them." if gpus > 1 else
                               "There are not several GPUs here: the processes share this machine's CPU cores "
                               "(gloo). That shows how a run on several GPUs goes; it is seldom faster than one "
                               "process.")
        device.setStyleSheet("color: #555;")
        self.processes = named(QSpinBox(), "processesPerMachine", "Processes on each machine")
        self.processes.setRange(1, 64)
        self.processes.setValue(gpus if gpus > 1 else 2)
        self.machines = named(QSpinBox(), "machines", "Machines")
        self.machines.setRange(1, 64)
        self.endpoint = named(QLineEdit(f"{socket.gethostname()}:{PORT}"), "rendezvousEndpoint",
                              "This machine's address and a free port")
        self.endpoint.setMinimumWidth(220)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Processes on each machine:", self.processes)
        form.addRow("Machines:", self.machines)
        form.addRow("This machine (machine 0), HOST:PORT:", self.endpoint)
        self.share = WrappingLabel("")
        self.others_label = WrappingLabel("On each other machine, with the same project file, data and Thaw, run:")
        self.others = named(QPlainTextEdit(), "otherMachineCommands", "Commands for the other machines")
        self.others.setReadOnly(True)
        self.others.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.others.setMaximumHeight(96)
        self.copy = named(QPushButton("Copy the commands"), "copyMachineCommands", "Copy the commands")
        self.copy.clicked.connect(lambda: QApplication.clipboard().setText(self.others.toPlainText()))
        self.problem = WrappingLabel("")
        self.problem.setStyleSheet("color: #c62828;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start = named(buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole), "startInProcesses",
                           "Start the run in several processes")
        named(buttons.button(QDialogButtonBox.StandardButton.Cancel), "cancelProcesses", "Cancel")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        copy_row = QHBoxLayout()
        copy_row.addWidget(self.copy)
        copy_row.addStretch(1)
        lay = QVBoxLayout(self)
        for w in (intro, device):
            lay.addWidget(w)
        lay.addLayout(form)
        for w in (self.share, self.others_label, self.others):
            lay.addWidget(w)
        lay.addLayout(copy_row)
        lay.addStretch(1)
        for w in (self.problem, buttons):
            lay.addWidget(w)
        for signal in (self.processes.valueChanged, self.machines.valueChanged, self.endpoint.textChanged):
            signal.connect(self.refresh)
        self.resize(600, 400)
        self.refresh()

    def launch(self) -> launch.Launch:
        endpoint = self.endpoint.text().strip() if self.machines.value() > 1 else ""
        return launch.Launch(self.processes.value(), self.machines.value(), 0, endpoint)

    def refresh(self) -> None:
        """What the engine says about the launch now, and the other machines' commands."""
        how, several = self.launch(), self.machines.value() > 1
        for w in (self.endpoint, self.others_label, self.others, self.copy):
            w.setEnabled(several)
        self.others.setVisible(several)
        self.others_label.setVisible(several)
        self.copy.setVisible(several)
        problem = ""
        try:
            launch.check_project(self.project, how)
            if several and self.project_file is None:
                raise ThawError("several machines run the same project file: save the project first")
        except ThawError as exc:
            problem = str(exc)
        b = self.project.train.batch_size
        self.share.setText(f"{how.world_size} processes in all: each takes {b // how.world_size} of the {b} images "
                           f"of a step (train.batch_size is one step over all processes)." if not problem else "")
        self.problem.setText(problem)
        self.problem.setVisible(bool(problem))
        self.start.setEnabled(not problem)
        commands = [shlex.join(launch.train_command(self.project_file or "PROJECT.thaw.toml", how, node_rank=i,
                                                    python="python"))
                    for i in range(1, how.nnodes)] if several else []
        self.others.setPlainText("\n".join(commands))


def run_in_processes(window: Any) -> bool:
    """Run > Run in Several Processes...: the dialog, then the run (a `MainWindow`'s `project`, `path`, `dirty`,
    `problems`, `show_error` and `runs` are used). False when nothing started."""
    if window.is_running():
        return False
    found = window.problems()
    if found:
        window.show_error("Cannot start", "\n".join(found))
        return False
    saved = window.path if window.path is not None and not window.dirty else None
    dialog = ProcessesDialog(window.project, saved, window)
    accepted = dialog.exec() == QDialog.DialogCode.Accepted
    how = dialog.launch()
    dialog.deleteLater()
    if not accepted:
        return False
    run_dir = reserve_run_dir(window.project)  # made now: a run starting elsewhere this second gets another
    folder = None
    if saved is not None:
        project_file = saved
    else:  # the project as the window holds it, paths made absolute, in a file the run reads
        folder = Path(tempfile.mkdtemp(prefix="thaw-run-"))
        project_file = folder / "project.thaw.toml"
        projects.save(resolved(window.project), project_file)

    def cleanup() -> None:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # still empty: the processes never took it
            run_dir.rmdir()
    command = launch.train_command(project_file, how, out=run_dir)
    window.runs.launch_processes(window.project, command, run_dir, how.world_size, cleanup)
    return True
