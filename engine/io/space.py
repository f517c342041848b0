"""Disk space and writability: what a run's files take, whether the disk of its output folder has that much
free, and whether a folder that may not exist yet could be written."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from engine.errors import ProjectError


def run_bytes(model_bytes: int, optimizer_kind: str) -> int:
    """Disk space a run's outputs need for a model of `model_bytes`: a checkpoint (model, optimizer state, a
    second copy for the best weights) and model.safetensors, written while the previous checkpoint still exists."""
    optimizer_copies = 2 if optimizer_kind == "adamw" else 1
    return model_bytes * (2 * (2 + optimizer_copies) + 1)


def nearest_existing(path: str | os.PathLike) -> Path:
    """`path`, or its nearest parent that exists (what a folder about to be made will be made in)."""
    existing = Path(path)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    return existing


def write_problem(folder: str | os.PathLike) -> OSError | None:
    """Why a file cannot be made in `folder` (an existing folder), found by making and removing one."""
    try:
        if not Path(folder).is_dir():
            raise OSError(f"{folder} is not a folder")
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc
    return None


def space_problem(folder: str | os.PathLike, needed: int) -> str | None:
    """Why the disk holding `folder` (or its nearest existing parent) cannot take `needed` bytes (None if it can,
    or if the disk cannot be asked: what is wrong with the folder is then said when it is written)."""
    try:
        free = shutil.disk_usage(nearest_existing(folder)).free
    except OSError:
        return None
    if free >= needed:
        return None
    return (f"only {free / 2**20:,.0f} MB free on the disk of {folder}; this run's checkpoints and model need "
            f"about {needed / 2**20:,.0f} MB. Free some space or choose another output folder")


def check_space(folder: str | os.PathLike, needed: int) -> None:
    """`ProjectError` before training when the disk holding `folder` has less than `needed` bytes free."""
    problem = space_problem(folder, needed)
    if problem:
        raise ProjectError("train.out_dir", problem)
