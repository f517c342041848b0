"""A run folder's default name: ``<project name>-<YYYYmmdd-HHMMSS>``, safe on every file system.

The project's name is kept to letters, digits, ``.``, ``-`` and ``_`` (anything else becomes ``_``, so a name
that is not valid UTF-8 gives a valid folder name), and cut to `MAX_NAME_BYTES` with a short hash of the whole
name: a 300-character name fits the 255-byte limit of a file name, and two long names that start alike still
get different folders. The full name stays in the run's project.thaw.toml. Runs started in the same second
get ``-2``, ``-3``, ... (`engine.runs.claim` takes the first free one).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from pathlib import Path

MAX_NAME_BYTES = 96  # of the name part; with the stamp and a -N suffix, far below any file system's 255


def safe_name(name: str) -> str:
    """`name` as a file name part: safe characters only, at most `MAX_NAME_BYTES` bytes in UTF-8."""
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "run"
    if len(safe.encode("utf-8")) <= MAX_NAME_BYTES:
        return safe
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    cut = safe.encode("utf-8")[: MAX_NAME_BYTES - len(digest) - 1].decode("utf-8", "ignore").rstrip("._")
    return f"{cut}~{digest}"


def folder_name(name: str, now: float | None = None, n: int = 1) -> str:
    """The `n`-th candidate folder name for a run of the project `name` started at `now`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{safe_name(name)}-{stamp}" + (f"-{n}" if n > 1 else "")


def free_folder(base: Path, name: str, now: float | None = None) -> Path:
    """The first candidate under `base` that does not exist now: a choice, not a claim (a run takes its folder
    with `engine.runs.claim`; this is for a name shown before anything runs, e.g. a study's folder)."""
    now = time.time() if now is None else now
    return next(base / folder_name(name, now, n) for n in itertools.count(1)
                if not (base / folder_name(name, now, n)).exists())


def reserve_folder(base: Path, name: str, now: float | None = None) -> Path:
    """The first candidate under `base`, made (empty) with an exclusive create: a folder handed on to other
    processes (a torchrun's, whose rank 0 takes it as an empty folder) is not also chosen by a run starting in
    the same second."""
    now = time.time() if now is None else now
    base.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        folder = base / folder_name(name, now, n)
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
