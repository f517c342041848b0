"""The card shown when a run ends: best and final validation accuracy, time, the frozen-weights check, and how
many unusable files were skipped."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

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
    """Hidden until a run ends; `show_result` fills it in and shows it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runSummary")
        self.setStyleSheet("#runSummary { background: #eef5ee; border: 1px solid #9ccc9c; border-radius: 4px; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
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
        self.result: FitEnded | None = None
        self.hide()

    def show_result(self, result: FitEnded) -> None:
        self.result = result
        self.label.setText(describe(result))
        self.open_button.setEnabled(bool(result.run_dir) and Path(result.run_dir).is_dir())
        self.show()

    def run_folder_url(self) -> QUrl:
        return QUrl.fromLocalFile(str(Path(self.result.run_dir).resolve())) if self.result else QUrl()

    def open_run_folder(self) -> bool:
        return QDesktopServices.openUrl(self.run_folder_url())
