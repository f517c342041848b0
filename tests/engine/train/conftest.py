"""Fixtures of the training-loop tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from engine.model.assemble import assemble as real_assemble
from engine.train import loop as training


@pytest.fixture
def memory_for(monkeypatch):
    """Models assembled for training run out of memory (torch's real CUDA error) on more than `limit[0]`
    images at once, as a GPU with that little memory would; `models` are the models assembled."""
    limit, models = [None], []

    def check(_module, args):
        if limit[0] is not None and args[0].shape[0] > limit[0]:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate a batch of {args[0].shape[0]}")

    def assemble(*a, **kw):
        built = real_assemble(*a, **kw)
        built.model.register_forward_pre_hook(check)
        models.append(built.model)
        return built

    monkeypatch.setattr(training, "assemble", assemble)
    return SimpleNamespace(limit=limit, models=models)
