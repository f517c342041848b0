"""summary.json's content: what a finished `fit` did, on what, with which settings, and what it left out."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from engine.model.freezing import FrozenCheck


def _number(x: float) -> float | None:
    return None if math.isnan(x) else x


def fit_summary(fit: Any, *, best: float, final: float, check: FrozenCheck, seconds: float,
                skipped: list[tuple[str, str]], stopped_early: bool, stopped_by_user: bool,
                resumed_from: int | None, images_per_second: float) -> dict[str, Any]:
    """The summary of `fit` (an `engine.train.loop._Fit` that has run): JSON-ready, NaN as None."""
    s, t, params = fit.state, fit.project.train, list(fit.state.model.parameters())
    return {
        "arch": fit.project.model.arch,
        "classes": list(fit.data.classes),
        "best_val_accuracy": _number(best),
        "best_epoch": s.best_epoch or None,
        "final_val_accuracy": _number(final),
        "epochs_completed": s.epoch,
        "epochs_planned": t.epochs,
        "stopped_early": stopped_early,
        "stopped_by_user": stopped_by_user,
        "device": str(fit.device),
        "world_size": fit.world.size,  # processes that trained together (torchrun); the device is rank 0's
        "autocast": str(fit.amp).replace("torch.", "") if fit.amp else None,
        "image_size": fit.a.image_size,
        "train_size": len(fit.data.train),
        "val_size": len(fit.data.val),
        "trainable_params": sum(p.numel() for p in params if p.requires_grad),
        "total_params": sum(p.numel() for p in params),
        "images_per_second": images_per_second,
        "feature_cache": fit.cache is not None,
        "frozen_verified": check.ok,
        "frozen_checked": check.checked,
        "frozen_changed": list(check.changed),
        "seconds": seconds,  # training and validation; not the time a pause held the loop
        "skipped_files": [{"path": path, "reason": reason} for path, reason in skipped],
        "resumed_from_epoch": resumed_from,
        "batch_size": t.batch_size,
        "images_per_pass": fit.micro,
        "out_of_memory_retries": list(fit.oom_retries),
        "notes": list(fit.a.notes),
        # what the images were prepared with, kept so that predictions and exports prepare theirs the same way
        # even after the model zoo (a timm update) says otherwise
        "preprocess": asdict(fit.a.info.preprocess),
    }
