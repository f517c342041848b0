"""The feature cache: with everything below the head frozen and no augmentation, the backbone is a fixed
function of the image, so its outputs (the head's inputs) are computed once and only the head is trained on
them. Also the train/eval modes that make cached and uncached training give the same logits.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from engine.distributed.world import World
from engine.loading import ImageDataset, make_loader
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


@dataclass(frozen=True)
class Tap:
    """A place a forward pass is read at: a module's input (`before`) or its output, made `[N, D]` by `pool`."""

    module: nn.Module
    before: bool = False
    pool: Callable[[torch.Tensor], torch.Tensor] = torch.Tensor.detach


def extract(model: nn.Module, taps: Sequence[Tap], loader: DataLoader, device: torch.device,
            amp: torch.dtype | None, stop: threading.Event,
            check: Callable[[Any, list[torch.Tensor]], bool] | None = None
            ) -> tuple[list[torch.Tensor], torch.Tensor, list[Any]] | None:
    """Run the model over `loader` (no gradients) and keep what each tap reads, as float32, with the labels and
    the files that failed to load. None when stopped, when a tap is not read exactly once per batch, or when
    `check(output, first batch's readings)` says no."""
    current: list[list[torch.Tensor]] = [[] for _ in taps]

    def reader(i: int, tap: Tap) -> Callable[..., None]:
        def read(_module: nn.Module, args: Any, out: Any = None) -> None:
            current[i].append(tap.pool(args[0] if tap.before else out).detach())
        return read

    hooks = [tap.module.register_forward_pre_hook(reader(i, tap)) if tap.before else
             tap.module.register_forward_hook(reader(i, tap)) for i, tap in enumerate(taps)]
    feats: list[list[torch.Tensor]] = [[] for _ in taps]
    labels, failures = [], []
    try:
        with torch.no_grad():
            for batch in loader:
                if stop.is_set():
                    return None
                failures += batch.failures
                if not len(batch):
                    continue
                for c in current:
                    c.clear()
                x = to_device(batch.x, device)
                with autocast(device, amp):
                    out = model(x)
                if any(len(c) != 1 for c in current):
                    return None
                if check is not None:
                    if not check(out, [c[0] for c in current]):
                        return None
                    check = None
                for f, c in zip(feats, current, strict=True):
                    f.append(c[0].float())
                labels.append(batch.y)
    finally:
        for hook in hooks:
            hook.remove()
    y = torch.cat(labels) if labels else torch.empty(0, dtype=torch.long)
    return [torch.cat(f) if f else torch.empty(0) for f in feats], y, failures


def _head_inputs(model: nn.Module, head: nn.Module, loader: DataLoader, device: torch.device,
                 amp: torch.dtype | None, check: bool, stop: threading.Event
                 ) -> tuple[TensorDataset, list[Any]] | None:
    """The head's input for every image of `loader`. With `check`, first make sure the model's output is the
    head's output of that input (else None: this model cannot be cached this way)."""
    def same_output(out: Any, read: list[torch.Tensor]) -> bool:
        with autocast(device, amp):
            again = head(read[0])
        return (isinstance(out, torch.Tensor) and again.shape == out.shape
                and torch.allclose(again.float(), out.float(), rtol=1e-3, atol=1e-4))

    got = extract(model, [Tap(head, before=True)], loader, device, amp, stop, same_output if check else None)
    if got is None:
        return None
    (x,), y, failures = got
    if x.numel() * 4 > _CACHE_ON_DEVICE_BYTES:
        x = x.cpu()
    else:
        y = y.to(x.device)
    return TensorDataset(x, y), failures


class FeatureStore:
    """The head's inputs of images already computed, kept across runs of one frozen backbone (a transfer study's
    recipes, seeds and subsets): a run computes only the images the store lacks. It is keyed by the backbone's
    tensors and the images' preprocessing, so a run of another model, weights or size starts it afresh."""

    def __init__(self) -> None:
        self._key = ""
        self._features: dict[str, torch.Tensor] = {}
        self.reused = 0  # images taken from the store instead of the model, all runs together

    def head_inputs(self, model: nn.Module, a: Assembled, loader: DataLoader, device: torch.device,
                    amp: torch.dtype | None, stop: threading.Event) -> tuple[TensorDataset, list[Any]] | None:
        dataset = loader.dataset
        key = _fingerprint(model, a.head_paths, dataset)
        check = key != self._key  # a new backbone: check once that its output is its head's of these inputs
        if check:
            self._key, self._features = key, {}
        missing = [s for s in dataset.samples if s.path not in self._features]
        failures: list[Any] = []
        computed = 0
        if missing:
            part = make_loader(ImageDataset(missing, dataset.transform, dataset.image_size), loader.batch_size,
                               False, 0, num_workers=loader.num_workers)
            got = _head_inputs(model, model.get_submodule(a.head_paths[0]), part, device, amp, check, stop)
            if got is None:
                self._key = ""
                return None
            features, failures = got
            failed = {f.path for f in failures}
            kept = [s for s in missing if s.path not in failed]
            self._features.update(zip((s.path for s in kept), features.tensors[0].cpu(), strict=True))
            computed = len(kept)
        known = [s for s in dataset.samples if s.path in self._features]
        self.reused += len(known) - computed
        x = torch.stack([self._features[s.path] for s in known]) if known else torch.empty(0)
        y = torch.tensor([s.label for s in known], dtype=torch.long)
        if x.numel() * 4 <= _CACHE_ON_DEVICE_BYTES:
            x, y = x.to(device), y.to(device)
        return TensorDataset(x, y), failures


def _fingerprint(model: nn.Module, head_paths: Sequence[str], dataset: Any) -> str:
    """What a backbone's features depend on: its tensors (all but the head's) and the images' preprocessing."""
    digest = hashlib.sha256(f"{type(model).__name__} {dataset.transform!r} {dataset.image_size}".encode())
    for name, t in model.state_dict().items():
        if not under(name, head_paths):
            digest.update(name.encode())
            digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def build_cache(model: nn.Module, a: Assembled, train_eval: DataLoader, val: DataLoader,
                device: torch.device, amp: torch.dtype | None, stop: threading.Event,
                store: FeatureStore | None = None) -> FeatureCache | None:
    """The head's inputs for the train and val images (taking those a `store` has, and adding the rest to it);
    None when stopped or when the model's output is not its head's output of that input."""
    head = model.get_submodule(a.head_paths[0])
    model.eval()
    if store is not None:
        got_train = store.head_inputs(model, a, train_eval, device, amp, stop)
        got_val = store.head_inputs(model, a, val, device, amp, stop) if got_train is not None else None
    else:
        got_train = _head_inputs(model, head, train_eval, device, amp, check=True, stop=stop)
        got_val = _head_inputs(model, head, val, device, amp, check=False, stop=stop) if got_train is not None else None
    if got_train is None or got_val is None:
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
