"""The window's own settings (layout, recent projects, the last folder a dialog chose): an INI file in Thaw's
data folder.

Kept beside the demo data rather than in the platform registry so that THAW_DATA_DIR (set by the tests)
also isolates them: a test never touches the person's real settings.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from engine.io.locations import data_dir

MAX_RECENT = 8


def app_settings() -> QSettings:
    return QSettings(str(data_dir() / "gui-settings.ini"), QSettings.Format.IniFormat)


def recent_projects() -> list[str]:
    value = app_settings().value("recent", [])
    if isinstance(value, str):  # QSettings gives a bare string for a one-item list
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent_project(path: str | Path) -> list[str]:
    path = str(Path(path).resolve())
    recent = [path] + [p for p in recent_projects() if p != path]
    recent = recent[:MAX_RECENT]
    settings = app_settings()
    settings.setValue("recent", recent)
    settings.sync()
    return recent


def forget_recent_project(path: str) -> None:
    settings = app_settings()
    settings.setValue("recent", [p for p in recent_projects() if p != path])
    settings.sync()


def dialog_folder(start: str | Path | None) -> str:
    """Where a file dialog opens: `start` (the project's folder, the field's own path) where it exists, else
    the folder last chosen in a dialog, else the person's home; never the folder Thaw was started from."""
    for candidate in (start, app_settings().value("lastFolder")):
        if candidate and Path(str(candidate)).is_dir():
            return str(candidate)
        if candidate and Path(str(candidate)).parent.is_dir():
            return str(Path(str(candidate)).parent)
    return str(Path.home())


def remember_folder(path: str | Path) -> None:
    """A dialog returned `path`: later dialogs open where it is."""
    p = Path(path)
    settings = app_settings()
    settings.setValue("lastFolder", str(p if p.is_dir() else p.parent))
    settings.sync()
