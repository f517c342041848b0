"""Whose folder is it: Thaw's own (a run folder, a folder of runs, a cache) or the person's.

A scan of an image folder leaves Thaw's own folders out (they are not classes), and a run writes only into a
folder it created or an empty one: never among the person's files, never inside the data.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCK_NAME = ".lock"  # held while a process trains in a run folder (`engine.runs.lock`)
RUN_PROJECT = "project.thaw.toml"  # the project as run: with labels.json, the first files a run writes
RUN_LABELS = "labels.json"
CACHE_TAG = "CACHEDIR.TAG"  # the Cache Directory Tagging Specification's mark (https://bford.info/cachedir/)


def is_run_folder(folder: str | os.PathLike) -> bool:
    """A Thaw run folder: one a run has taken (its lock file) or written its first files into."""
    folder = Path(folder)
    return (folder / LOCK_NAME).is_file() or ((folder / RUN_PROJECT).is_file() and (folder / RUN_LABELS).is_file())


def is_thaw_folder(folder: str | os.PathLike) -> bool:
    """A folder Thaw made for itself: a run folder, a folder holding only run folders (an output folder), a
    tagged cache or Python's ``__pycache__``."""
    folder = Path(folder)
    if folder.name == "__pycache__" or (folder / CACHE_TAG).is_file() or is_run_folder(folder):
        return True
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return False
    return bool(entries) and all(p.is_dir() and is_run_folder(p) for p in entries)


def inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """`path` is `folder` or lies under it, after following links (a path that does not exist yet included)."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True
