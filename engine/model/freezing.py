"""Freezing as data: a plan names the frozen module (or tensor) paths; pure functions apply and check it.
(Plans are built from presets and ticks by `engine.model.checklist`.)

A path freezes everything inside it. The head is always trainable, whatever the plan says about its
parent. BatchNorm layers inside frozen modules run in eval mode by default, so their running statistics
stay put: `apply_plan` installs a forward pre-hook on each of them that switches it back to eval before
every forward, which survives any number of ``model.train()`` calls (pytorch/pytorch#86590);
`set_frozen_bn_eval` does the same at once, for code that wants the modules' flags right before a forward.
With ``train_frozen_bn`` (fastai's ``train_bn``) those BatchNorm layers are trainable instead: their
affine parameters get gradients and their statistics update.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import torch
from torch import nn

from engine.model.heads import heads_of
from engine.model.modpath import under

_BN = nn.modules.batchnorm._BatchNorm
_bn_hooks: weakref.WeakKeyDictionary[nn.Module, list[Any]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class FreezePlan:
    """The frozen paths (modules, or single parameters such as ViT's ``class_token``) and the BN policy."""

    frozen: frozenset[str] = field(default_factory=frozenset)
    train_frozen_bn: bool = False

    def is_frozen(self, path: str) -> bool:
        """True when `path` or one of its ancestors (the root "" included) is in `frozen`."""
        if not self.frozen:
            return False
        if "" in self.frozen or path in self.frozen:
            return True
        while "." in path:
            path = path.rpartition(".")[0]
            if path in self.frozen:
                return True
        return False


@dataclass(frozen=True)
class FrozenCheck:
    ok: bool
    changed: list[str]
    checked: int


def _tensors(module: nn.Module, recurse: bool) -> Iterable[tuple[str, torch.Tensor]]:
    return chain(module.named_parameters(recurse=recurse), module.named_buffers(recurse=recurse))


# ---------------------------------------------------------------- applying plans


def frozen_tensors(model: nn.Module, plan: FreezePlan, head_paths: Sequence[str] = ()) -> set[str]:
    """Names (as in ``state_dict``) of every parameter and buffer the plan keeps unchanged."""
    if not plan.frozen:
        return set()
    heads = heads_of(model, head_paths)
    trained_bn = {p for p, m in model.named_modules() if isinstance(m, _BN)} if plan.train_frozen_bn else set()
    out = set()
    for name, _ in _tensors(model, True):
        if under(name, heads) or name.rpartition(".")[0] in trained_bn:
            continue
        if plan.is_frozen(name):
            out.add(name)
    return out


def _frozen_bn(model: nn.Module, plan: FreezePlan, heads: Sequence[str]) -> list[nn.Module]:
    if plan.train_frozen_bn or not plan.frozen:
        return []
    return [m for p, m in model.named_modules() if isinstance(m, _BN) and plan.is_frozen(p) and not under(p, heads)]


def _keep_eval(module: nn.Module, args: Any) -> None:
    if module.training:
        module.train(False)


def apply_plan(model: nn.Module, plan: FreezePlan, head_paths: Sequence[str] = ()) -> None:
    """Set ``requires_grad`` from the plan (heads always trainable) and pin frozen BatchNorm to eval mode."""
    heads = heads_of(model, head_paths)
    frozen = frozen_tensors(model, plan, heads)
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)
    for handle in _bn_hooks.pop(model, []):
        handle.remove()
    bns = _frozen_bn(model, plan, heads)
    _bn_hooks[model] = [m.register_forward_pre_hook(_keep_eval) for m in bns]
    for m in bns:
        m.train(False)


def set_frozen_bn_eval(model: nn.Module, plan: FreezePlan, head_paths: Sequence[str] = ()) -> None:
    """Put BatchNorm layers inside frozen modules in eval mode now (e.g. right after ``model.train()``)."""
    for m in _frozen_bn(model, plan, heads_of(model, head_paths)):
        m.train(False)


# ---------------------------------------------------------------- checking plans


def snapshot_frozen(model: nn.Module, plan: FreezePlan, head_paths: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """Copies of every frozen parameter and buffer (BatchNorm statistics included), to check after training."""
    frozen = frozen_tensors(model, plan, head_paths)
    return {name: t.detach().clone() for name, t in _tensors(model, True) if name in frozen}


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits as integers, so NaNs and signed zeros compare exactly."""
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    return t.contiguous().view(ints[t.element_size()]) if t.is_floating_point() else t


def verify_frozen(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> FrozenCheck:
    """Whether every snapshotted tensor is still bit-identical; lists the names that changed."""
    current = dict(_tensors(model, True))
    changed = []
    for name, before in snapshot.items():
        now = current.get(name)
        if now is None or now.shape != before.shape or now.dtype != before.dtype or not torch.equal(
                _bits(now.detach()), _bits(before.to(now.device))):
            changed.append(name)
    return FrozenCheck(ok=not changed, changed=changed, checked=len(snapshot))
