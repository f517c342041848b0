"""File dialogs that open where the person expects (`gui.settings.dialog_folder`: the project's folder or the
field's own path, else the last folder chosen, else home) and remember what was chosen for the next one; and what a path dropped on a window means."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from gui import settings as gui_settings

PROJECT_SUFFIX = ".thaw.toml"  # engine.project.SUFFIX, without importing the engine before the first paint


def _chosen(path: str) -> str:
    if path:
        gui_settings.remember_folder(path)
    return path


def open_file(parent: QWidget, title: str, start: str | Path | None, filters: str) -> str:
    """A file to read ('' when cancelled)."""
    path, _ = QFileDialog.getOpenFileName(parent, title, gui_settings.dialog_folder(start), filters)
    return _chosen(path)


def open_files(parent: QWidget, title: str, start: str | Path | None, filters: str) -> list[str]:
    """Files to read ([] when cancelled)."""
    paths, _ = QFileDialog.getOpenFileNames(parent, title, gui_settings.dialog_folder(start), filters)
    if paths:
        _chosen(paths[0])
    return paths


def save_file(parent: QWidget, title: str, start: str | Path | None, name: str, filters: str) -> str:
    """A file to write, proposed as `name` in the start folder ('' when cancelled)."""
    path, _ = QFileDialog.getSaveFileName(parent, title, str(Path(gui_settings.dialog_folder(start)) / name),
                                          filters)
    return _chosen(path)


def choose_folder(parent: QWidget, title: str, start: str | Path | None) -> str:
    """A folder ('' when cancelled)."""
    return _chosen(QFileDialog.getExistingDirectory(parent, title, gui_settings.dialog_folder(start)))


def dropped_choice(path: str) -> tuple[str, str] | None:
    """What dropping `path` means: open a project file, or start from a folder / CSV list of images."""
    p = Path(path)
    if p.name.endswith(PROJECT_SUFFIX):
        return "open", str(p)
    if p.is_dir() or p.suffix.lower() == ".csv":
        return "folder", str(p)
    return None
