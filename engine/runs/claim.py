"""Taking a run folder: chosen in one place and taken at once, before anything is scanned, built or cached.

`claim` makes the folder with an exclusive create (of two runs that pick the same name in the same second,
one gets ``-2``) and locks it (`engine.runs.lock`), so a parallel sweep of one project simply works and a run
can never write into a folder another run is using or has filled. A folder given with ``--out`` is taken only
when it is new or empty, or holds only what a run that trained nothing left (`holds_untrained_run`: made anew):
a folder holding a run is refused (continue it with ``--resume``), and so is any other folder with files in it
(the person's project folder, say), so no file Thaw did not make is ever replaced. Nowhere inside the data
(`engine.sources.output_problem`). `Claim.release` unlocks, and removes the folders the claim made if the run
wrote nothing into them (a run refused during its set-up leaves nothing). Under torchrun rank 0 alone claims
(`engine.runs.folder.train`); the other ranks write nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ProjectError
from engine.io.ownership import LOCK_NAME, RUN_LABELS, RUN_PROJECT, is_run_folder
from engine.io.space import nearest_existing, write_problem
from engine.project import Project
from engine.runs import activity_file, events_file
from engine.runs.lock import RunLock
from engine.runs.naming import reserve_folder
from engine.sources import output_problem

# What an "empty" folder may hold: the lock of a run that was refused while starting, and the files the
# desktop leaves in any folder it shows.
NOT_CONTENT = frozenset({LOCK_NAME, ".DS_Store", "Thumbs.db", "desktop.ini"})
TRAINED_FILES = ("model.safetensors", "checkpoint.safetensors")
RUN_RESULTS = ("summary.json", *TRAINED_FILES)
UNTRAINED_FILES = frozenset({RUN_PROJECT, RUN_LABELS, "metrics.csv", "summary.json", events_file.FILENAME,
                             activity_file.FILENAME})


def holds_untrained_run(folder: str | os.PathLike) -> bool:
    """The folder holds a run that ended before its first epoch did: a run folder with nothing trained and
    nothing to continue (no model, no checkpoint), its summary saying 0 epochs or, for a run killed, none. A new
    run may take the folder (`--out`, a study's run) once nobody trains there (`claim` holds its lock first)."""
    folder = Path(folder)
    if not is_run_folder(folder) or any((folder / name).exists() for name in TRAINED_FILES):
        return False
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("epochs_completed") == 0


@dataclass
class Claim:
    """A run folder taken for one run: locked, and what the claim made (deepest first)."""

    folder: Path
    lock: RunLock
    made: list[Path] = field(default_factory=list)

    def release(self) -> None:
        """Unlock (the lock file goes), then remove the folders the claim made that are still empty."""
        self.lock.release()
        for folder in self.made:
            try:
                folder.rmdir()
            except OSError:  # something is in it: a run's files, or another run's folder
                break


def claim(project: Project, out: str | os.PathLike | None = None) -> Claim:
    """Take the run folder `out` (``--out``), or a new one under ``train.out_dir`` named by
    `engine.runs.naming.reserve_folder`; `ProjectError` naming the setting when it cannot be had."""
    key = "train.out_dir" if out is None else "--out"
    folder = (project.resolve(project.train.out_dir) if out is None else Path(out).expanduser()).absolute()
    _check_place(project, folder, key)
    if out is not None and folder.exists() and not folder.is_dir():
        raise ProjectError(key, f"{folder} exists and is not a folder")
    taken = Claim(folder, RunLock(folder))
    try:
        if out is None:  # a new folder in train.out_dir: the first free name
            _make_folders(folder, key, taken.made)
            try:
                taken.folder = reserve_folder(folder, project.name)
            except OSError as exc:
                raise ProjectError(key, f"cannot make a run folder in {folder}: {exc}") from None
            taken.made.insert(0, taken.folder)
            taken.lock = RunLock(taken.folder)
        else:
            _make_folders(folder.parent, key, taken.made)
            if not _make_folder(folder, key, taken.made):
                _check_empty(folder, key, held=False)  # before the lock file is made in it
        taken.lock.acquire()
        if taken.folder not in taken.made:
            _check_empty(folder, key, held=True)  # again: a run may have filled it before this one got the lock
    except BaseException:
        taken.release()
        raise
    return taken


def _check_place(project: Project, folder: Path, key: str) -> None:
    problem = output_problem(project, folder)
    if problem:
        raise ProjectError(key, problem)
    problem = write_problem(nearest_existing(folder))
    if problem:
        raise ProjectError(key, f"cannot write the run folder {folder}: {problem}")


def _make_folder(folder: Path, key: str, made: list[Path]) -> bool:
    """Create `folder` exclusively: True if this call made it (then it heads `made`), False if it was there."""
    try:
        folder.mkdir()
    except FileExistsError:
        return False
    except OSError as exc:
        raise ProjectError(key, f"cannot make the run folder {folder}: {exc}") from None
    made.insert(0, folder)
    return True


def _make_folders(folder: Path, key: str, made: list[Path]) -> None:
    """Make `folder` and its missing parents (a parent a run beside this one makes meanwhile is not ours)."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for f in reversed(missing):
        _make_folder(f, key, made)


def _check_empty(folder: Path, key: str, held: bool) -> None:
    """`ProjectError` unless `folder` holds nothing a person or another run put there; `RunLocked` if another
    run is training there (asked unless this claim `held` the lock already)."""
    try:
        content = sorted(p.name for p in folder.iterdir() if p.name not in NOT_CONTENT)
    except OSError as exc:
        raise ProjectError(key, f"cannot read the run folder {folder}: {exc}") from None
    if not content:
        return
    if is_run_folder(folder) or any(name in content for name in RUN_RESULTS):
        if not held:  # the run there may still be going: say so rather than "holds a run"
            probe = RunLock(folder)
            probe.acquire()
            probe.release()
        if set(content) <= UNTRAINED_FILES and holds_untrained_run(folder):
            if held:  # what a run that trained nothing left (Thaw's, not the person's): made again by this one
                for name in content:
                    (folder / name).unlink(missing_ok=True)
            return
        raise ProjectError(key, f"{folder} already holds a run; choose another folder, remove it, or continue "
                                "it with --resume")
    raise ProjectError(key, f"{folder} is not empty ({len(content)} item(s), e.g. {content[0]}) and is not a Thaw "
                            "run folder; a run writes only into a new or empty folder, never among other files: "
                            "choose another folder, or leave --out out (a new folder under train.out_dir)")
