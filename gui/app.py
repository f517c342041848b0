"""Start the application: the start page at once, the engine (PyTorch) loading behind it, the main window when a
choice is made (or at once for a project or demo named on the command line); and the process's end, which no
thread delays for long.

Importing torch and torchvision is most of the start-up (7-8 s on a slow first launch); the start page needs
neither, so it is painted first and the imports run in a background thread meanwhile (`gui.tasks.Task`). A
choice made while they run waits for them, and says so.

When the event loop returns, the threads still running get until `gui.tasks.QUIT_SECONDS` after the window
was closed (which stopped its run): a batch that cannot be interrupted then ends with the process, `os._exit`,
rather than keep a process of many gigabytes running unseen. Checkpoints are written atomically, so the run
folder keeps its last completed epoch.
"""

from __future__ import annotations

import gc
import os
import sys
import time

# bench/startup.py: "1" quits after the first paint of anything (the start page), "window" after the main
# window's first paint with its project loaded.
EXIT_AFTER_PAINT = "THAW_EXIT_AFTER_PAINT"


def preload() -> None:
    """The heavy imports, off the GUI thread: torch, torchvision and the engine and window modules over them."""
    import torchvision

    import gui.main_window  # noqa: F401 (engine.model, engine.preflight, engine.runs, numpy, PIL ...)
    import gui.results.view  # noqa: F401 (made when the first run ends: its imports held the window ~40 ms then)

    torchvision.models.list_models()  # the architecture registry, asked once, cached by engine.model.zoo


def create_window(project_path: str | None = None, demo: str | None = None):
    """The main window on `project_path`, on the `demo` scenario, or on a new project; a bad path is shown as a
    message. The project is read before the window is built, so the window is set up once, on it."""
    from engine import project as projects
    from engine.demo.scenarios import ensure_demo
    from engine.errors import ThawError
    from gui.main_window import MainWindow

    if project_path is None and demo is None:
        window = MainWindow()
        window.new_project()
        return window
    try:
        path = project_path or ensure_demo(demo)
        project = projects.load(path)
    except ThawError:  # open it again in the window, which says what is wrong
        window = MainWindow()
        if project_path:
            window.open_path(project_path, ask=False)
        else:
            window.open_demo(demo)
        return window
    window = MainWindow(project, path)
    window.remember_opened(path)
    return window


class Launcher:
    """The start page and the main window: which one shows, and what a choice on the start page does."""

    def __init__(self, app, project_path: str | None, demo: str | None) -> None:
        from gui.start_page import StartPage
        from gui.tasks import Task

        self.app, self.window, self.ready, self.pending = app, None, False, None
        self.start = StartPage()
        self.start.chosen.connect(self.choose)
        self.loading = Task(lambda _state: preload(), name="thaw-preload")
        self.loading.returned.connect(self._loaded)
        self.loading.errored.connect(lambda exc: self.start.set_status(f"Thaw cannot start: {exc}"))
        if project_path or demo:
            self.pending = ("open", project_path) if project_path else ("demo", demo)
            self.start.set_status("Loading the engine (PyTorch), then opening "
                                  f"{os.path.basename(project_path) if project_path else f'the {demo} demo'}…")

    def run(self) -> None:
        """Show the start page; the engine starts loading once it has painted (the paint gets the GIL first)."""
        on_first_paint(self.app, self.start, self.loading.start)
        self.start.show()

    def choose(self, kind: str, arg: str) -> None:
        if not self.ready:
            self.pending = (kind, arg)
            self.start.set_status("Loading the engine (PyTorch); your choice opens as soon as it is ready…")
            return
        from gui.main_window import MainWindow

        if self.window is None:
            if kind == "open":
                self.window = create_window(arg)
            elif kind == "demo":
                self.window = create_window(demo=arg)
            else:
                self.window = MainWindow()
            self.window.start_page_requested.connect(self._show_start_page)
            gc.freeze()  # the engine and the window live for good: collections until the plots need not walk them
            if kind == "folder":
                self.window.new_from_folder(arg)
            if os.environ.get(EXIT_AFTER_PAINT) == "window":
                quit_after_first_paint(self.app, self.window)
        elif kind == "open":
            self.window.open_path(arg)
        elif kind == "demo":
            self.window.open_demo(arg)
        else:
            self.window.new_from_folder(arg)
        self.start.hide()
        self.window.show()
        self.window.raise_()

    def _loaded(self, _result) -> None:
        self.ready = True
        self.start.set_status("Ready.")
        if self.pending:
            self.choose(*self.pending)

    def quit_by(self) -> float:
        """When the process must be gone (`time.monotonic()`): as the window's close set it, else from now."""
        runs = self.window.runs if self.window is not None else None
        if runs is not None and runs.quit_by is not None:
            return runs.quit_by
        from gui.tasks import QUIT_SECONDS

        return time.monotonic() + QUIT_SECONDS

    def _show_start_page(self) -> None:
        self.start.show_recent()
        self.start.show()
        self.start.raise_()


def run_gui(project_path: str | None = None, demo: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from gui import tasks

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Thaw")
    app.setOrganizationName("Thaw")
    launcher = Launcher(app, project_path, demo)
    if os.environ.get(EXIT_AFTER_PAINT) == "1":
        quit_after_first_paint(app, launcher.start)
    launcher.run()
    code = app.exec()
    if not tasks.join_running(launcher.quit_by()):
        _exit_now(code, "thaw: a thread was still running at exit (a batch that could not be interrupted); "
                        "ended with the process")
    return code


def _exit_now(code: int = 0, why: str = "") -> None:
    """Leave at once, threads and all: a timing run once the start page has painted (not after the imports
    still running), or a thread that would keep the process alive after the window has gone."""
    if why:
        print(why, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def quit_after_first_paint(app, window) -> None:
    """Quit once `window` has painted (a timing run): the main window through the event loop, the start page
    at once, without waiting for the imports still running."""
    on_first_paint(app, window, app.quit if window.objectName() == "mainWindow" else _exit_now)


def on_first_paint(app, window, then) -> None:
    """Call `then` (from the event loop) once any widget of `window` has painted: the whole window is flushed in
    that same pass."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class _Watch(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Type.Paint and hasattr(obj, "window") and obj.window() is window:
                app.removeEventFilter(self)
                QTimer.singleShot(0, then)
            return False

    watch = _Watch(app)
    app.installEventFilter(watch)
