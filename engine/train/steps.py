"""Small pieces of a training step: moving a batch to the device, autocast, and a pass's running sums."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from engine.loading import Batch


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda" and x.dim() == 4:
        return x.to(device, non_blocking=True, memory_format=torch.channels_last)
    return x.to(device, non_blocking=True)


def batches(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[Any]]]:
    for b in loader:
        if isinstance(b, Batch):
            yield b.x, b.y, b.failures
        else:
            yield b[0], b[1], []


@dataclass
class Pass:
    """Running sums of one pass over a split."""

    loss: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0

    def add(self, loss: float, correct: int, n: int) -> None:
        self.loss += loss * n
        self.correct += correct
        self.seen += n

    @property
    def mean_loss(self) -> float:
        return self.loss / self.seen if self.seen else math.nan

    @property
    def accuracy(self) -> float:
        return self.correct / self.seen if self.seen else math.nan


