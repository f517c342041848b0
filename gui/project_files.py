"""The window's File and Demo menus: New, Open, Open Recent, Save, Save As, the demos, Continue a Stopped Run;
and what a file or folder dropped on the window does.

A mixin of `MainWindow`: it reads and writes project files through `engine.project`; the window shows them.
Save refuses while a field shows text the project could not take (e.g. "abc" as the number of epochs): the file
would hold something else than the window shows. Nothing is lost: the window keeps both the text and the
project, and says which fields to fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from engine import project as projects
from engine.errors import ThawError
from engine.io.locations import data_dir
from engine.model import zoo
from engine.project import SUFFIX, Project, TrainSettings
from gui import settings as gui_settings
from gui.dialogs import choose_folder, dropped_choice, open_file, save_file

FILE_FILTER = f"Thaw projects (*{SUFFIX});;All files (*)"
DEFAULT_OUT_DIR = TrainSettings().out_dir


class ProjectFiles:
    """New / Open / Save for a window with `project`, `path`, `dirty`, `history`, `setup_panels`, `set_project`,
    `typed_problems`, `is_running`, `launch_resume`, `log` and `show_error`."""

    def maybe_save(self) -> bool:
        """Before losing unsaved changes: ask to save them. False when the person cancels (or saving fails)."""
        if not self.dirty:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to {self.windowTitle().split(' — ')[0].rstrip('*')}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def _busy(self, title: str) -> bool:
        """True (with a message) while a run is going: the project it trains cannot be replaced under it."""
        if self.is_running():
            self.show_error(title, "A run is in progress. Stop it (or wait until it ends), then try again.")
        return self.is_running()

    def new_project(self) -> bool:
        """A project that can run on this machine as it is (`engine.model.zoo.starting_point`), untitled: its runs
        go to Thaw's data folder until it is saved, never to the folder Thaw was started from."""
        if self._busy("Cannot start a new project") or not self.maybe_save():
            return False
        settings, why = zoo.starting_point()
        project = Project(base_dir=data_dir())
        for key, value in settings.items():
            project.set(key, value)
        self.set_project(project)
        self.log(f"new project: it {why}")
        return True

    def new_from_folder(self, folder: str) -> None:
        """A new project on a folder of images (or a CSV list): the start page's "Start from a folder"."""
        if self.new_project():
            self.data_panel.use_source(folder)

    def take_dropped(self, path: str) -> bool:
        """A file or folder dropped on the window: a project file is opened, a folder of images or a CSV list
        becomes the training data."""
        choice = dropped_choice(path)
        if choice is None or self._busy("Cannot take the dropped file"):
            return False
        kind, path = choice
        return self.open_path(path) if kind == "open" else self.data_panel.use_source(path)

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        path = open_file(self, "Open project", self.path.parent if self.path else None, FILE_FILTER)
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path: str | Path, ask: bool = True) -> bool:
        """Open a project file; a bad file is shown as a message and the current project stays."""
        if self._busy("Cannot open a project") or (ask and not self.maybe_save()):
            return False
        try:
            project = projects.load(path)
        except ThawError as exc:
            self.show_error("Cannot open project", str(exc))
            if not Path(path).exists():
                gui_settings.forget_recent_project(str(Path(path).resolve()))
                self._refresh_recent_menu()
            return False
        self.set_project(project, path)
        self.remember_opened(path)
        return True

    def remember_opened(self, path: str | Path) -> None:
        """The project file at `path` is open: add it to the recent list and the log."""
        gui_settings.add_recent_project(path)
        self._refresh_recent_menu()
        self.log(f"opened {path}")

    def open_demo(self, scenario: str) -> bool:
        from engine.demo.scenarios import ensure_demo

        if self._busy("Cannot open the demo") or not self.maybe_save():
            return False
        try:
            path = ensure_demo(scenario)
        except ThawError as exc:
            self.show_error("Cannot build the demo", str(exc))
            return False
        return self.open_path(path, ask=False)

    def save(self) -> bool:
        if self.path is None:
            return self.save_as_dialog()
        return self.save_to(self.path)

    def save_as_dialog(self) -> bool:
        name = self.path.name if self.path else f"{self.project.name or 'untitled'}{SUFFIX}"
        path = save_file(self, "Save project as", self.path.parent if self.path else None, name, FILE_FILTER)
        return self.save_to(path) if path else False

    def save_to(self, path: str | Path) -> bool:
        """Write the project to `path`; refused (with the fields to fix) while a field shows refused text."""
        path = Path(path)
        if not path.name.endswith(SUFFIX):
            path = path.with_name(path.name.removesuffix(".toml") + SUFFIX)
        typed = self.typed_problems()
        if typed:
            self.show_error("Cannot save project", "These fields show values the project cannot take, so the file "
                            "would not hold what you see. Correct them, then save again:\n" + "\n".join(typed))
            return False
        to_save = self.project
        if self.path is None and self.project.train.out_dir == DEFAULT_OUT_DIR:  # from now on, runs go beside it
            to_save = self.project.copy()
            to_save.train.out_dir = os.path.relpath(path.parent.resolve() / DEFAULT_OUT_DIR, to_save.base_dir)
        try:
            saved = projects.save(to_save, path)
        except (ThawError, OSError) as exc:
            self.show_error("Cannot save project", f"{path}: {exc}")
            return False
        # The saved copy's relative paths point at the same places from the new folder: show them.
        for key in projects.PATH_KEYS:
            self.project.set(key, saved.get(key))
        self.project.base_dir = saved.base_dir
        for panel in self.setup_panels.values():
            panel.fields.load(self.project)
        self.path = path
        self.history.saved()
        self.dirty = False
        self._update_title()
        gui_settings.add_recent_project(path)
        self._refresh_recent_menu()
        self.log(f"saved {path}")
        return True

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = gui_settings.recent_projects()
        for i, path in enumerate(recent):
            action = self.recent_menu.addAction(path)
            action.setObjectName(f"recentProject{i}")
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(recent) and not self.is_running())

    def continue_dialog(self) -> None:
        folder = choose_folder(self, "Continue the run in folder", self.project.resolve(self.project.train.out_dir))
        if folder:
            self.continue_run(folder)

    def continue_run(self, run_dir: str | Path) -> bool:
        """Show the run's own project (read-only while it runs) and resume the run from its checkpoint."""
        if self._busy("Cannot continue a run") or not self.maybe_save():
            return False
        try:
            project = projects.load(Path(run_dir) / "project.thaw.toml")
        except ThawError as exc:
            self.show_error("Cannot continue the run", f"{run_dir} is not a run folder: {exc}")
            return False
        self.set_project(project)
        return self.launch_resume(run_dir)
