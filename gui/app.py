"""Start the Qt application and the main window on a project (the inductive demo when none is given)."""

from __future__ import annotations

import sys
from pathlib import Path


def create_window(project_path: str | None = None):
    """The main window on `project_path`, or on the inductive demo; a bad path is shown as a message."""
    from engine import project as projects
    from engine.errors import ThawError
    from gui.main_window import MainWindow

    window = MainWindow()
    if project_path:
        try:
            project = projects.load(project_path, check_paths=False)
        except ThawError as exc:
            window.show_error("Cannot open project", f"{exc}\n\nOpen another one with File > Open.")
        else:
            window.set_project(project, Path(project_path))
            from gui import settings

            settings.add_recent_project(project_path)
            window.log(f"opened {project_path}")
    else:
        window.open_demo("inductive")
    return window


def run_gui(project_path: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from gui import threads

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Thaw")
    app.setOrganizationName("Thaw")
    window = create_window(project_path)
    window.show()
    code = app.exec()
    for thread in threads.running():  # closeEvent joins the run; this is the last guard
        thread.quit()
        thread.wait()
    return code
