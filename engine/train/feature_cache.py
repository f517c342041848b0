"""The feature cache: with everything below the head frozen and no augmentation, the backbone is a fixed
function of the image, so its outputs (the head's inputs) are computed once and only the head is trained on
them. Also the train/eval modes that make cached and uncached training give the same logits.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from engine.distributed.world import World
from engine.model.assemble import Assembled
from engine.model.freezing import set_frozen_bn_eval
from engine.model.modpath import under
from engine.train.steps import autocast, to_device

# Feature caches up to this size stay on the accelerator; larger ones stay in host memory.
_CACHE_ON_DEVICE_BYTES = 2 << 30


def backbone_frozen(model: nn.Module, a: Assembled) -> bool:
    """True when no parameter or BatchNorm statistic outside the head can change."""
    if a.plan.train_frozen_bn:
        return False
    return all(not p.requires_grad for n, p in model.named_parameters() if not under(n, a.head_paths))


def set_train_mode(model: nn.Module, a: Assembled, backbone_frozen: bool) -> None:
    """Train mode for what trains. A fully frozen backbone runs as the fixed function it is (eval mode:
    no dropout or stochastic depth in it), which is also what makes its features cacheable."""
    if backbone_frozen:
        model.eval()
        for path in a.head_paths:
            model.get_submodule(path).train()
    else:
        model.train()
    set_frozen_bn_eval(model, a.plan, a.head_paths)


class FeatureCache:
    """The head's inputs for every train and val image, computed once with the frozen backbone."""

    def __init__(self, head: nn.Module, train: TensorDataset, val: TensorDataset, failures: list[Any]):
        self.head, self.train, self.val, self.failures = head, train, val, failures


def _extract(model: nn.Module, head: nn.Module, loader: DataLoader, device: torch.device,
             amp: torch.dtype | None, check: bool, stop: threading.Event
             ) -> tuple[TensorDataset, list[Any]] | None:
    """Run the model over `loader`, keeping the head's input. With `check`, first make sure the model's
    output is the head's output of that input (else None: this model cannot be cached this way)."""
    captured: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
    feats, labels, failures = [], [], []
    try:
        with torch.no_grad():
            for batch in loader:
                if stop.is_set():
                    return None
                failures += batch.failures
                if not len(batch):
                    continue
                captured.clear()
                x = to_device(batch.x, device)
                with autocast(device, amp):
                    out = model(x)
                if len(captured) != 1:
                    return None
                f = captured[0]
                if check:
                    check = False
                    with autocast(device, amp):
                        again = head(f)
                    if not (isinstance(out, torch.Tensor) and again.shape == out.shape
                            and torch.allclose(again.float(), out.float(), rtol=1e-3, atol=1e-4)):
                        return None
                feats.append(f.float())
                labels.append(batch.y)
    finally:
        hook.remove()
    x = torch.cat(feats) if feats else torch.empty(0)
    y = torch.cat(labels) if labels else torch.empty(0, dtype=torch.long)
    if x.numel() * 4 > _CACHE_ON_DEVICE_BYTES:
        x = x.cpu()
    else:
        y = y.to(x.device)
    return TensorDataset(x, y), failures


def build_cache(model: nn.Module, a: Assembled, train_eval: DataLoader, val: DataLoader,
                 device: torch.device, amp: torch.dtype | None, stop: threading.Event) -> FeatureCache | None:
    head = model.get_submodule(a.head_paths[0])
    model.eval()
    got_train = _extract(model, head, train_eval, device, amp, check=True, stop=stop)
    if got_train is None:
        return None
    got_val = _extract(model, head, val, device, amp, check=False, stop=stop)
    if got_val is None:
        return None
    return FeatureCache(head, got_train[0], got_val[0], got_train[1] + got_val[1])




def shared(cache: FeatureCache | None, world: World) -> FeatureCache | None:
    """Under torchrun each rank caches its part of the images (`engine.distributed.ddp.shard`); the parts are
    gathered so that every rank holds all the features, as one process would, and samples them as it would
    the images. None on every rank when one rank has no cache (it ran out of memory): all train without."""
    if not world.all(cache is not None):
        return None
    if world.distributed:
        cache.train, cache.val = (TensorDataset(*(world.cat(x) for x in part.tensors))
                                  for part in (cache.train, cache.val))
        cache.failures = [f for part in world.gather(cache.failures) for f in part]
    return cache
