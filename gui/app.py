"""Start the Qt application and the main window on a project (the inductive demo when none is given)."""

from __future__ import annotations

import os
import sys

# Set to 1 to quit as soon as the window has first painted: bench/startup.py times launch to first paint.
EXIT_AFTER_PAINT = "THAW_EXIT_AFTER_PAINT"


def create_window(project_path: str | None = None):
    """The main window on `project_path`, or on the inductive demo; a bad path is shown as a message.

    The project is read before the window is built, so the window is set up once, on it: building it on a
    default project first and then switching cost start-up 0.24 s.
    """
    from engine import project as projects
    from engine.demo.scenarios import ensure_demo
    from engine.errors import ThawError
    from gui.main_window import MainWindow

    try:
        path = project_path or ensure_demo("inductive")
        project = projects.load(path)
    except ThawError:  # open it again in the window, which says what is wrong
        window = MainWindow()
        if project_path:
            window.open_path(project_path, ask=False)
        else:
            window.open_demo("inductive")
        return window
    window = MainWindow(project, path)
    window.remember_opened(path)
    return window


def run_gui(project_path: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from gui import tasks

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Thaw")
    app.setOrganizationName("Thaw")
    window = create_window(project_path)
    if os.environ.get(EXIT_AFTER_PAINT) == "1":
        _quit_after_first_paint(app, window)
    window.show()
    code = app.exec()
    for thread in tasks.running():  # closeEvent joins the run; this is the last guard
        thread.quit()
        thread.wait()
    return code


def _quit_after_first_paint(app, window) -> None:
    """Quit once any widget of `window` has painted: the whole window is flushed in that same pass."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class _Watch(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Type.Paint and hasattr(obj, "window") and obj.window() is window:
                app.removeEventFilter(self)
                QTimer.singleShot(0, app.quit)
            return False

    app._thaw_paint_watch = _Watch(app)
    app.installEventFilter(app._thaw_paint_watch)
