"""File > Export Model... (and Export... in the Results tab): a run's model as a bundle that predicts the same
outside Thaw (`engine.export`).

The dialog names the run folder (the run the window shows, followed through `follow_run` until the person chooses
another), the formats and the destination; the
export runs in a `gui.tasks.Task` and shows its steps; at the end it shows how each format compared with
PyTorch (or why a format could not be exported) and a button opens the bundle's folder. Without the `export`
extra the ONNX box is off and the dialog says how to install it. What may be written where, and every
message, is the engine's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import ThawError
from engine.export.bundle import FORMATS, ExportResult, ExportStopped
from engine.export.destination import default_destination
from engine.export.graph import INSTALL_HINT, VerificationFailed, missing_packages
from engine.export.own_process import export_run_in_own_process
from gui import dialogs
from gui.naming import named
from gui.tasks import Task

LABELS = {"onnx": ("ONNX (model.onnx, predict.py)", "Export ONNX"),
          "pt2": ("PyTorch program (model.pt2)", "Export the PyTorch program"),
          "safetensors": ("Weights (model.safetensors)", "Export the weights")}
GOOD, BAD, WARN = "#2e7d32", "#c62828", "#b26a00"


class ExportDialog(QDialog):
    """Export a run's model; `run_dir` is the folder shown first ("" for none). `opener` opens a folder's URL
    (Qt's desktop services unless told otherwise)."""

    def __init__(self, run_dir: str | Path = "", parent: QWidget | None = None,
                 opener: Callable[[QUrl], bool] = QDesktopServices.openUrl) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Model")
        self.setObjectName("exportDialog")
        self.opener = opener
        self.task: Task | None = None
        self.result: ExportResult | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._close_when_done = False
        self._auto_destination = ""
        self._auto_run = str(run_dir)

        self.run_edit = named(QLineEdit(str(run_dir)), "exportRunFolder", "Run folder to export")
        self.run_edit.setPlaceholderText("a run folder (it holds model.safetensors)")
        self.run_edit.setMinimumWidth(420)  # the dialog's width, through its layout (which then keeps every row)
        self.run_button = named(QPushButton("Browse..."), "exportRunBrowse", "Choose the run folder")
        self.boxes = {fmt: named(QCheckBox(LABELS[fmt][0]), f"exportFormat_{fmt}", LABELS[fmt][1])
                      for fmt in FORMATS}
        for box in self.boxes.values():
            box.setChecked(True)
        self.missing = QLabel()
        self.missing.setWordWrap(True)
        self.dest_edit = named(QLineEdit(), "exportDestination", "Destination folder")
        self.dest_edit.setToolTip("The bundle's own folder: a new one, an empty one, or an earlier export (replaced)."
                                  " A folder holding anything else is refused, and nothing in it is touched.")
        self.dest_button = named(QPushButton("Browse..."), "exportDestinationBrowse", "Choose the destination")
        self.zip_box = named(QCheckBox("Write one .zip file instead of a folder"), "exportZip", "Write a zip file")
        self.steps = QLabel("")
        self.steps.setWordWrap(True)
        self.progress = named(QProgressBar(), "exportProgress", "Export progress")
        self.progress.setRange(0, 0)  # busy: the steps have no known length
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.outcome = QLabel("")
        self.outcome.setObjectName("exportOutcome")
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.show_button = named(QPushButton("Show Folder"), "exportShowFolder", "Show the exported bundle's folder")
        self.show_button.setEnabled(False)
        self.export_button = named(QPushButton("Export"), "exportStart", "Export the model")
        self.export_button.setDefault(True)
        self.close_button = named(QPushButton("Close"), "exportClose", "Close the export dialog")
        self._lay_out()

        self.run_button.clicked.connect(self._choose_run)
        self.dest_button.clicked.connect(self._choose_destination)
        self.run_edit.textChanged.connect(self._follow_run)
        for widget in (self.run_edit, self.dest_edit):
            widget.textChanged.connect(self._refresh)
        for box in self.boxes.values():
            box.toggled.connect(self._refresh)
        self.export_button.clicked.connect(self.start)
        self.show_button.clicked.connect(self.show_folder)
        self.close_button.clicked.connect(self.reject)
        self._offer_onnx()
        self._follow_run(self.run_edit.text())
        self._refresh()

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Run folder", _row(self.run_edit, self.run_button))
        formats = QVBoxLayout()
        for box in self.boxes.values():
            formats.addWidget(box)
        formats.addWidget(self.missing)
        form.addRow("Formats", formats)
        form.addRow("Destination", _row(self.dest_edit, self.dest_button))
        form.addRow("", self.zip_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.show_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.steps)
        layout.addWidget(self.outcome, 1)
        layout.addLayout(buttons)

    # ------------------------------------------------------------ the fields

    def formats(self) -> list[str]:
        return [fmt for fmt, box in self.boxes.items() if box.isChecked() and box.isEnabled()]

    def _offer_onnx(self) -> None:
        lacking = missing_packages()
        self.boxes["onnx"].setEnabled(not lacking)
        self.boxes["onnx"].setChecked(not lacking)
        self.missing.setVisible(bool(lacking))
        if lacking:
            self.missing.setText(f"<span style='color:{WARN}'>ONNX export needs {', '.join(lacking)}, which this "
                                 f"Python lacks. Install them with: <code>{INSTALL_HINT}</code></span>")

    def follow_run(self, folder: str | Path | None) -> None:
        """The window shows another run (`shown_run_changed`): the run folder follows it, unless the person chose
        their own or an export is running."""
        if self.task is None and self.run_edit.text().strip() in ("", self._auto_run):
            self._auto_run = str(folder) if folder is not None else ""
            self.run_edit.setText(self._auto_run)

    def _follow_run(self, text: str) -> None:
        """The destination follows the run folder (RUN/export) until the person types their own."""
        if self.dest_edit.text() in ("", self._auto_destination):
            self._auto_destination = str(default_destination(Path(text.strip()))) if text.strip() else ""
            self.dest_edit.setText(self._auto_destination)

    def _refresh(self) -> None:
        idle = self.task is None
        for widget in (self.run_edit, self.run_button, self.dest_edit, self.dest_button, self.zip_box,
                       *self.boxes.values()):
            widget.setEnabled(idle and (widget is not self.boxes["onnx"] or not missing_packages()))
        self.export_button.setEnabled(idle and bool(self.run_edit.text().strip()) and bool(self.formats()))
        self.close_button.setText("Close" if idle else "Stop")
        self.close_button.setAccessibleName("Close the export dialog" if idle else "Stop the export")

    def _choose_run(self) -> None:
        path = dialogs.choose_folder(self, "Run folder to export", self.run_edit.text() or None)
        if path:
            self.run_edit.setText(path)

    def _choose_destination(self) -> None:
        path = dialogs.choose_folder(self, "Export into folder", self.dest_edit.text() or None)
        if path:
            self.dest_edit.setText(path)

    # ------------------------------------------------------------ the export

    def start(self) -> None:
        if self.task is not None:
            return
        run_dir, out = self.run_edit.text().strip(), self.dest_edit.text().strip() or None
        formats, zipped = self.formats(), self.zip_box.isChecked()
        self.result = self.error = None
        self._stop.clear()
        self.outcome.setText("")
        self.show_button.setEnabled(False)
        self.progress.show()
        self.task = Task(lambda state: export_run_in_own_process(  # torch.export's state stays out of the window
            run_dir, out, formats, zipped=zipped, progress=state.report, stop=self._stop), self, "thaw-export",
            stop=self._stop)
        self.task.reported.connect(lambda text: self.steps.setText(f"{text}..."))
        self.task.returned.connect(self._done)
        self.task.errored.connect(self._failed)
        self.task.finished.connect(self._finished)
        self.task.start()
        self._refresh()

    def _done(self, result: ExportResult) -> None:
        self.result = result
        colour = WARN if result.failed else GOOD
        head = "Exported with a format left out" if result.failed else "Exported and verified"
        body = "<br>".join(escape(line) for line in result.summary().splitlines())
        self.outcome.setText(f"<b style='color:{colour}'>{head}</b> to {escape(str(result.path))}<br>{body}")
        self.show_button.setEnabled(True)
        self._grow()

    def _failed(self, exc: BaseException) -> None:
        self.error = exc
        if isinstance(exc, ExportStopped):
            text = "Stopped: nothing was written."
        elif isinstance(exc, VerificationFailed):
            text = f"<b style='color:{BAD}'>Verification failed</b>: {escape(str(exc))}"
        elif isinstance(exc, ThawError):
            text = f"<b style='color:{BAD}'>Cannot export</b>: {escape(str(exc))}"
        else:
            text = f"<b style='color:{BAD}'>Export failed</b>: {escape(f'{type(exc).__name__}: {exc}')}"
        self.outcome.setText(text)
        self._grow()

    def _grow(self) -> None:
        """Taller when the result needs it (wrapped text at this width), so no row is squeezed."""
        layout = self.layout()
        layout.activate()
        need = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() else layout.sizeHint().height()
        if need > self.height():
            self.resize(self.width(), need)

    def _finished(self) -> None:
        self.task.deleteLater()
        self.task = None
        self.progress.hide()
        self.steps.setText("")
        self._refresh()
        if self._close_when_done:
            super().reject()

    def show_folder(self) -> None:
        if self.result is not None:
            path = self.result.path
            self.opener(QUrl.fromLocalFile(str(path.parent if path.suffix == ".zip" else path)))

    def is_running(self) -> bool:
        return self.task is not None

    def reject(self) -> None:
        """Close; while exporting, stop first (the dialog closes once the export has ended, nothing written)."""
        if self.task is None:
            super().reject()
            return
        self._close_when_done = True
        self.steps.setText("stopping after the current step...")
        self.task.request_interruption()

    def join(self, timeout_ms: int = 600_000) -> bool:
        """Wait for the export to end (tests, quitting)."""
        return self.task is None or self.task.join(timeout_ms)


def _row(edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row
