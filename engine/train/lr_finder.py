"""The learning-rate finder: a short mock training whose rate grows exponentially, as fastai's ``lr_find``.

From `start` to `end` over `steps` optimizer steps (1e-7 to 10 over 100 by default), with the project's own model,
freeze plan (the schedule's first stage) and parameter groups: every group's rate is its own scaled by one factor,
and the head's is the one reported. The loss is smoothed with a debiased moving average (beta 0.98); the sweep
stops when the smoothed loss exceeds 4x the best so far or is not a number.

It leaves no trace: the loop's whole state (weights, BatchNorm statistics, optimizer and rate-curve state, every
random generator, the modules' train/eval modes) is captured before and put back after, so training after the
finder is bit-identical to training without it (fastai#3013), and it can run again at once (fastai#3658). With the
backbone frozen it sweeps the head on cached features (augmentation off for the sweep), in seconds.

Suggestions (`suggest`) follow fastai 2.8 on the sweep minus its first tenth and last 5 points, truncated at the
first NaN: valley (the default), steepest (slopes against log(lr); against plain lr the steepest point lands at
the far left, Lightning#21141), minimum/10, slide.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.project import Project
from engine.train import state as st
from engine.train.feature_cache import set_train_mode
from engine.train.interrupt import StopRequested
from engine.train.loop import _Fit
from engine.train.steps import batches, to_device

SUGGESTIONS = ("valley", "steepest", "minimum", "slide")
BETA = 0.98
DIVERGED = 4.0
FEW_POINTS = 20  # fewer points than this left for the suggestions: a sweep too short to trust


@dataclass
class Sweep:
    """A finder's result: the head's rate and the raw and smoothed loss at each step, why it ended, and the
    suggestions (None where too few points were left)."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    ended: str  # "done", "diverged", "not a number" or "stopped"
    suggestions: dict[str, float | None] = field(default_factory=dict)
    points: int = 0  # points the suggestions were computed on
    seconds: float = 0.0
    feature_cache: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("losses", "smoothed"):  # JSON has no NaN
            out[key] = [v if math.isfinite(v) else None for v in out[key]]
        return out


def smooth(losses: Sequence[float], beta: float = BETA) -> list[float]:
    """The debiased exponential moving average of the losses (fastai's AvgSmoothLoss)."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**i))
    return out


def ended_by(smoothed: Sequence[float]) -> str | None:
    """Why a sweep ends after these smoothed losses: "not a number", "diverged" (above 4x the best), or None."""
    last = smoothed[-1]
    if not math.isfinite(last):
        return "not a number"
    return "diverged" if last > DIVERGED * min(smoothed) else None


def suggest(lrs: Sequence[float], smoothed: Sequence[float], steps: int) -> tuple[dict[str, float | None], int]:
    """The four suggestions on ``[steps // 10 : -5]`` of the sweep, cut at its first NaN; and how many points
    that left."""
    lr = np.asarray(lrs[steps // 10: -5], dtype=np.float64)
    loss = np.asarray(smoothed[steps // 10: -5], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(loss))
    if len(bad):
        lr, loss = lr[: bad[0]], loss[: bad[0]]
    if len(loss) < 2:
        return dict.fromkeys(SUGGESTIONS), len(loss)
    steepest = int(np.argmin(np.diff(loss) / np.diff(np.log(lr))))
    return {"valley": float(lr[_valley(loss)]), "steepest": float(lr[steepest]),
            "minimum": float(lr[int(np.argmin(loss))] / 10), "slide": _slide(lr, loss)}, len(loss)


def _valley(loss: np.ndarray) -> int:
    """fastai's valley: about two thirds down the longest strictly falling run of points (not necessarily next
    to each other)."""
    n = len(loss)
    runs, start, end = [1] * n, 0, 0
    for i in range(1, n):
        for j in range(i):
            if loss[i] < loss[j] and runs[i] < runs[j] + 1:
                runs[i] = runs[j] + 1
            if runs[end] < runs[i]:
                end, start = i, i - runs[i]
    third = (end - start) / 3
    return start + int(third) + int(third / 2)


def _slide(lr: np.ndarray, loss: np.ndarray, lr_diff: int = 15, thresh: float = 0.005) -> float:
    """fastai's slide rule: from the right, the first point where the loss's gradient `lr_diff` points apart
    differs by at most `thresh`."""
    grad = np.gradient(loss)
    right, left = -1, -1 - lr_diff
    found = lr[left] if len(lr) > lr_diff else lr[0]
    while left >= -len(loss) and abs(grad[right] - grad[left]) > thresh:
        found = lr[left]
        right, left = right - 1, left - 1
    return float(found)


def sweep(fit: _Fit, start: float = 1e-7, end: float = 10.0, steps: int = 100,
          progress: Callable[[int, float, float], None] | None = None) -> Sweep:
    """Sweep on a set-up loop (`_Fit.setup` done) and put everything back; `progress(i, lr, loss)` after each step."""
    s = fit.state
    saved = st.capture(s, project={}, classes=[], micro_batch=fit.micro, load_failures={},
                       loader_generator=fit.train_loader.generator)
    modes = [(m, m.training) for m in s.model.modules()]
    activity, fit.activity = fit.activity, None  # nothing to measure in a mock run
    groups = s.optimizer.param_groups
    bases = [g.get("base_lr", g["lr"]) for g in groups]
    head = next(b for g, b in zip(groups, bases, strict=True) if g["name"] == "head")
    lrs: list[float] = []
    losses: list[float] = []
    ended, began = "done", time.perf_counter()
    try:
        set_train_mode(s.model, fit.a, fit.backbone_frozen)
        for i, (x, y) in enumerate(_forever(fit)):
            if i >= steps:
                break
            lr = start * (end / start) ** (i / steps)
            for g, base in zip(groups, bases, strict=True):
                g["lr"] = base * lr / head
            try:
                loss = float(fit.step(to_device(x, fit.device), y.to(fit.device))[0])
            except StopRequested:
                ended = "stopped"
                break
            lrs.append(lr)
            losses.append(loss)
            if progress is not None:
                progress(i, lr, loss)
            why = ended_by(smooth(losses))
            if why is not None:
                ended = why
                break
            if fit.stop.is_set():
                ended = "stopped"
                break
    finally:
        s.optimizer.zero_grad(set_to_none=True)
        st.restore(saved, s, fit.train_loader.generator)
        for m, training in modes:
            m.training = training
        fit.activity = activity
    smoothed = smooth(losses)
    suggestions, points = suggest(lrs, smoothed, steps)
    notes = []
    if points < FEW_POINTS:
        notes.append(f"only {points} points were left for the suggestions: sweep more steps, or a wider range")
    return Sweep(lrs, losses, smoothed, ended, suggestions, points, time.perf_counter() - began,
                 fit.cache is not None, notes)


def _forever(fit: _Fit):
    """The training batches, over and over (the sweep may take more steps than an epoch has)."""
    while True:
        seen = False
        for x, y, _failures in batches(fit.train_loader):
            if len(y):
                seen = True
                yield x, y
        if not seen:
            return


def find_lr(project: Project, *, start: float = 1e-7, end: float = 10.0, steps: int = 100,
            stop: threading.Event | None = None, progress: Callable[[int, float, float], None] | None = None) -> Sweep:
    """Sweep `project` as its run would start (its first stage's plan and groups); a `ThawError` before anything
    runs for an invalid project or data. `stop` ends the sweep early (its result so far is returned)."""
    p = project.copy()
    p.freeze.stages = [s for s in p.freeze.stages if s["start"] == 0]  # the first stage: what the run starts with
    notes = []
    if p.freeze.preset == "feature_extraction" and not p.freeze.train_frozen_bn and p.data.augment != "none":
        p.data.augment = "none"  # the backbone is a fixed function: its features are cached for the sweep
        notes.append("swept without augmentation, on the frozen backbone's cached features")
    fit = _Fit(p, (), stop, "", allow_cache=True)
    try:
        fit.setup()
        result = sweep(fit, start, end, steps, progress)
    finally:
        fit.close()
    result.notes = notes + result.notes
    return result
