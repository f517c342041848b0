"""The card shown when a run ends: best and final validation accuracy, time, the frozen-weights check, and how
many unusable files were skipped; a button opens the run folder, and where no file manager does (a machine
without one, a remote session), the card shows the folder's path to copy instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.events import FitEnded
from engine.wording import clock, count
from gui.naming import named


def describe(result: FitEnded) -> str:
    """One line of rich text that says how the run went."""
    how = "stopped by you" if result.stopped_by_user else "stopped early" if result.stopped_early else "finished"
    check = ("<span style='color:#2e7d32'>frozen weights unchanged ✓</span>" if result.frozen_verified
             else "<span style='color:#c62828'>frozen weights CHANGED ✗</span>")
    skipped = (f" · <span style='color:#b26a00'>{result.skipped_files} unusable file(s) skipped: listed in the "
               f"log and in summary.json</span>" if result.skipped_files else "")
    return (f"<b>Run {how}</b> after {count(result.epochs_completed, 'epoch')} in {clock(result.seconds)} · "
            f"best val accuracy <b>{result.best_val_accuracy:.1%}</b> · "
            f"final <b>{result.final_val_accuracy:.1%}</b> · {check}{skipped}")


class RunSummary(QFrame):
    """Hidden until a run ends; `show_result` fills it in and shows it. `opener` opens a folder's URL and says
    whether something did (Qt's desktop services, unless told otherwise)."""

    def __init__(self, parent: QWidget | None = None,
                 opener: Callable[[QUrl], bool] = QDesktopServices.openUrl) -> None:
        super().__init__(parent)
        self.setObjectName("runSummary")
        self.setStyleSheet("#runSummary { background: #eef5ee; border: 1px solid #9ccc9c; border-radius: 4px; }")
        self._opener = opener
        rows = QVBoxLayout(self)
        rows.setContentsMargins(8, 4, 8, 4)
        layout = QHBoxLayout()
        rows.addLayout(layout)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.open_button = named(QPushButton("Open run folder"), "openRunFolder", "Open the run folder")
        self.open_button.clicked.connect(self.open_run_folder)
        self.close_button = named(QPushButton("×"), "hideRunSummary", "Hide the run summary")
        self.close_button.setFlat(True)
        self.close_button.setFixedWidth(24)
        self.close_button.setToolTip("Hide this summary")
        self.close_button.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.open_button)
        layout.addWidget(self.close_button)
        self.folder_row = QWidget()  # where nothing opened the folder: its path, to copy
        row = QHBoxLayout(self.folder_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.folder_path = named(QLineEdit(), "runFolderPath", "Run folder path")
        self.folder_path.setReadOnly(True)
        self.copy_button = named(QPushButton("Copy"), "copyRunFolderPath", "Copy the run folder path")
        self.copy_button.clicked.connect(lambda: QApplication.clipboard().setText(self.folder_path.text()))
        row.addWidget(QLabel("No file manager opened the run folder; it is"))
        row.addWidget(self.folder_path, 1)
        row.addWidget(self.copy_button)
        rows.addWidget(self.folder_row)
        self.folder_row.hide()
        self.result: FitEnded | None = None
        self.hide()

    def show_result(self, result: FitEnded) -> None:
        self.result = result
        self.label.setText(describe(result))
        self.open_button.setEnabled(bool(result.run_dir) and Path(result.run_dir).is_dir())
        self.folder_row.hide()
        self.show()

    def run_folder_url(self) -> QUrl:
        return QUrl.fromLocalFile(str(Path(self.result.run_dir).resolve())) if self.result else QUrl()

    def open_run_folder(self) -> bool:
        """Open the run folder in the file manager; where none opens it, show its path with a Copy button."""
        url = self.run_folder_url()
        opened = self._opener(url)
        if not opened:
            self.folder_path.setText(url.toLocalFile())
            self.folder_path.setCursorPosition(0)
            self.folder_row.show()
        return opened
