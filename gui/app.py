"""Start the Qt application and the main window."""

from __future__ import annotations

import sys


def run_gui(project_path: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Thaw")
    app.setOrganizationName("Thaw")
    window = MainWindow()
    window.show()
    return app.exec()
