"""The optimizer, the learning-rate schedule and the class weights of a run, from its project's [train]."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def make_optimizer(train: Any, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum 0.9, over the parameter groups (`engine.model.freezing.param_groups`)."""
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=train.lr, momentum=0.9, nesterov=True, weight_decay=train.weight_decay)
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)


def make_scheduler(train: Any, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    """Stepped once per batch, so a run resumed mid-way follows the same curve."""
    kind = train.scheduler
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if kind == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total_steps)
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, total_steps // 3), gamma=0.1)
    return None


def class_weights(counts: Sequence[int]) -> torch.Tensor:
    """Inverse class frequency, normalised so that a balanced set gets weights of 1."""
    total, k = sum(counts), len(counts)
    return torch.tensor([total / (k * c) if c else 0.0 for c in counts], dtype=torch.float32)
