"""The optimizer, the learning-rate schedule and the class weights of a run, from its project's [train]."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch


def make_optimizer(train: Any, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum 0.9, over the parameter groups (`engine.model.freezing.param_groups`)."""
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=train.lr, momentum=0.9, nesterov=True, weight_decay=train.weight_decay)
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)


def make_scheduler(train: Any, optimizer: torch.optim.Optimizer, total_steps: int) -> RateCurve:
    """Stepped once per batch, so a run resumed mid-way follows the same curve."""
    return RateCurve(train.scheduler, optimizer, total_steps)


class RateCurve:
    """The run's learning-rate curve: each group learns at its base rate (``group["base_lr"]``, set by the
    schedule's stage) times the curve's factor at this step. Torch's schedulers keep one base rate per group from
    the start and refuse a group added later; an unfreezing schedule adds groups and changes their rates.

    The curves are torch's, in closed form: "cosine" (CosineAnnealingLR to 0), "onecycle" (OneCycleLR's
    defaults: from base/25 up to base at 30 % of the steps, then down to base/25e4; momentum, or Adam's beta1,
    from 0.95 to 0.85 and back), "step" (StepLR: x0.1 after each third of the steps), "none" (constant).
    """

    def __init__(self, kind: str, optimizer: torch.optim.Optimizer, total_steps: int) -> None:
        self.kind, self.optimizer, self.total = kind, optimizer, max(1, total_steps)
        self.last_epoch = 0  # steps taken (torch's name, so its schedulers' saved states load too)
        self.apply()

    def lr(self, base: float, step: int) -> float:
        if self.kind == "cosine":
            return base * (1 + math.cos(math.pi * step / self.total)) / 2
        if self.kind == "step":
            return base * 0.1 ** (step // max(1, self.total // 3))
        if self.kind == "onecycle":
            initial = base / 25.0
            return _one_cycle(step, self.total, (initial, base, initial / 1e4))
        return base

    def momentum(self, step: int) -> float | None:
        return _one_cycle(step, self.total, (0.95, 0.85, 0.95)) if self.kind == "onecycle" else None

    def apply(self) -> None:
        """Give every group its rate (and momentum) for the next step."""
        step = self.last_epoch
        m = self.momentum(step)
        for g in self.optimizer.param_groups:
            g.setdefault("base_lr", g["lr"])  # a group added without one (a checkpoint from before schedules)
            g["lr"] = self.lr(g["base_lr"], step)
            if m is not None:
                if "betas" in g:
                    g["betas"] = (m, *g["betas"][1:])
                else:
                    g["momentum"] = m

    def step(self) -> None:
        self.last_epoch += 1
        self.apply()

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_epoch = int(state["last_epoch"])
        self.apply()


def _one_cycle(step: int, total: int, values: tuple[float, float, float]) -> float:
    """OneCycleLR's two cosine phases through (start, peak, end), as torch computes them."""
    start, peak, end = values
    mid = 0.3 * total - 1
    if step <= mid:
        a, b, lo, hi = start, peak, 0.0, mid
    else:
        a, b, lo, hi = peak, end, mid, total - 1
    pct = (step - lo) / (hi - lo) if hi != lo else 1.0
    return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)


def class_weights(counts: Sequence[int]) -> torch.Tensor:
    """Inverse class frequency, normalised so that a balanced set gets weights of 1."""
    total, k = sum(counts), len(counts)
    return torch.tensor([total / (k * c) if c else 0.0 for c in counts], dtype=torch.float32)
