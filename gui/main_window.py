"""The main window: assembles the panels; owns no training logic."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Thaw")
        self.setCentralWidget(QLabel("Thaw"))
        self.resize(1280, 800)
