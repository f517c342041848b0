"""Disk space: what a run's files take, and whether the disk of its output folder has that much free."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from engine.errors import ProjectError


def run_bytes(model_bytes: int, optimizer_kind: str) -> int:
    """Disk space a run's outputs need for a model of `model_bytes`: a checkpoint (model, optimizer state, a
    second copy for the best weights) and model.safetensors, written while the previous checkpoint still exists."""
    optimizer_copies = 2 if optimizer_kind == "adamw" else 1
    return model_bytes * (2 * (2 + optimizer_copies) + 1)


def space_problem(folder: str | os.PathLike, needed: int) -> str | None:
    """Why the disk holding `folder` (or its nearest existing parent) cannot take `needed` bytes (None if it can)."""
    existing = Path(folder)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free >= needed:
        return None
    return (f"only {free / 2**20:,.0f} MB free on the disk of {folder}; this run's checkpoints and model need "
            f"about {needed / 2**20:,.0f} MB. Free some space or choose another output folder")


def check_space(folder: str | os.PathLike, needed: int, key: str = "train.out_dir") -> None:
    """`ProjectError` before training when the disk holding `folder` has less than `needed` bytes free."""
    problem = space_problem(folder, needed)
    if problem:
        raise ProjectError(key, problem)
