"""Stopping inside a batch: the stop flag is checked between layers, not only between batches.

A big model on the CPU (ViT-H/14) takes minutes per batch, too long to wait for a stop. While `fit` runs,
every module with parameters of its own gets a forward pre-hook, and every trainable parameter a gradient
hook, that raise `StopRequested` once the flag is set: the forward pass (training, validation, or the
feature cache's extraction) ends before its next layer, the backward pass before its next parameter's
gradient. The loop catches it, throws the partial batch away and ends as a stop between batches does.
Checking a flag costs about a microsecond per layer, nothing next to the layer itself.

A training step interrupted that way has not changed the parameters (the optimizer steps after the backward
pass), but its forward pass has changed BatchNorm's running statistics. While there are no kept weights to
fall back on (before the first epoch ends), the loop copies the model's buffers before each step
(`BufferCopy`: one flat tensor per dtype, a fraction of a millisecond) and puts them back after such a stop.

`StopRequested` never leaves `fit`, and the hooks are removed before `fit` returns (or raises).
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


class StopRequested(Exception):
    """Raised inside a forward or backward pass when the stop flag is set; caught by the training loop."""


class StopChecks:
    """The stop flag's hooks on one model, from construction to `remove`."""

    def __init__(self, model: nn.Module, stop: threading.Event) -> None:
        self.stop = stop
        self.handles: list[RemovableHandle] = []
        for module in model.modules():
            if next(module.parameters(recurse=False), None) is not None:
                self.handles.append(module.register_forward_pre_hook(self._before_layer))
        for p in model.parameters():
            if p.requires_grad:
                self.handles.append(p.register_hook(self._before_gradient))

    def _before_layer(self, _module: nn.Module, _args: Any) -> None:
        if self.stop.is_set():
            raise StopRequested

    def _before_gradient(self, _grad: torch.Tensor) -> None:
        if self.stop.is_set():
            raise StopRequested

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


class BufferCopy:
    """The model's buffers (BatchNorm's running statistics and batch counts) as they are now, to put back."""

    def __init__(self, model: nn.Module) -> None:
        groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
        for b in model.buffers():
            groups.setdefault((b.device, b.dtype), []).append(b)
        self.groups = list(groups.values())
        with torch.no_grad():
            self.flat = [torch.cat([b.reshape(-1) for b in group]) for group in self.groups]

    def put_back(self) -> None:
        with torch.no_grad():
            for group, flat in zip(self.groups, self.flat, strict=True):
                for b, saved in zip(group, flat.split([b.numel() for b in group]), strict=True):
                    b.copy_(saved.view(b.shape))
