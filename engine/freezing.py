"""Freezing as data: a plan names the frozen module (or tensor) paths; pure functions apply and check it.

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

from engine.errors import ProjectError
from engine.layers import blocks

PRESETS = ("feature_extraction", "last_blocks", "full", "custom")
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


def _heads(model: nn.Module, head_paths: Sequence[str]) -> tuple[str, ...]:
    if head_paths:
        return tuple(head_paths)
    from engine.heads import classifier_paths

    return tuple(classifier_paths(model))


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r + ".") for r in roots)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _tensors(module: nn.Module, recurse: bool) -> Iterable[tuple[str, torch.Tensor]]:
    return chain(module.named_parameters(recurse=recurse), module.named_buffers(recurse=recurse))


# ---------------------------------------------------------------- building plans


def _units(model: nn.Module, stop: set[str]) -> list[str]:
    """Tensor-holding units in registration order: blocks and heads whole, elsewhere leaves and loose tensors."""
    out: list[str] = []

    def visit(module: nn.Module, path: str) -> None:
        kids = [(n, c) for n, c in module.named_children() if c is not None]
        if path in stop or not kids:
            if any(True for _ in _tensors(module, True)):
                out.append(path)
            return
        out.extend(_join(path, n) for n, _ in _tensors(module, False))
        for n, c in kids:
            visit(c, _join(path, n))

    visit(model, "")
    return out


def _compress(model: nn.Module, units: set[str], frozen_units: set[str]) -> frozenset[str]:
    """The fewest paths that freeze exactly `frozen_units`: a module all of whose units are frozen stands in."""

    def visit(module: nn.Module, path: str) -> tuple[bool, bool, list[str]]:
        if path in units:
            f = path in frozen_units
            return f, True, [path] if f else []
        all_frozen, has, parts = True, False, []
        for n, _ in _tensors(module, False):
            has = True
            if _join(path, n) in frozen_units:
                parts.append(_join(path, n))
            else:
                all_frozen = False
        for n, c in module.named_children():
            if c is None:
                continue
            a, h, ps = visit(c, _join(path, n))
            if h:
                has, all_frozen = True, all_frozen and a
                parts += ps
        if has and all_frozen:
            return True, True, [path]
        return all_frozen, has, parts

    return frozenset(visit(model, "")[2])


def plan_for(model: nn.Module, preset: str, last_blocks: int = 1, frozen: Iterable[str] = (),
             train_frozen_bn: bool = False, head_paths: Sequence[str] = ()) -> FreezePlan:
    """A plan from a preset: everything but the head frozen, the last N blocks trainable, all, or `frozen`."""
    heads = _heads(model, head_paths)
    if preset == "full":
        return FreezePlan(frozenset(), train_frozen_bn)
    if preset == "custom":
        names = set(frozen)
        known = {p for p, _ in model.named_modules()} | {n for n, _ in _tensors(model, True)}
        unknown = sorted(names - known)
        if unknown:
            raise ProjectError("freeze.frozen", f"no layer named {', '.join(map(repr, unknown[:5]))} in this "
                                                "model; see `python main.py layers PROJECT` for the paths")
        return FreezePlan(frozenset(names), train_frozen_bn)
    if preset not in ("feature_extraction", "last_blocks"):
        raise ProjectError("freeze.preset", f"must be one of {', '.join(PRESETS)}, not {preset!r}")
    block_list = blocks(model, heads)
    n = last_blocks if preset == "last_blocks" else 0
    if n >= len(block_list):
        return FreezePlan(frozenset(), train_frozen_bn)
    units = _units(model, set(block_list) | set(heads))
    end = units.index(block_list[-n]) if n > 0 else len(units)
    frozen_units = {u for u in units[:end] if not _under(u, heads)}
    return FreezePlan(_compress(model, set(units), frozen_units), train_frozen_bn)


def plan_from_project(model: nn.Module, freeze: Any, head_paths: Sequence[str]) -> FreezePlan:
    """From a project's [freeze] section (`engine.project.FreezeSettings`)."""
    return plan_for(model, freeze.preset, last_blocks=freeze.last_blocks, frozen=freeze.frozen,
                    train_frozen_bn=freeze.train_frozen_bn, head_paths=head_paths)


# ---------------------------------------------------------------- applying plans


def frozen_tensors(model: nn.Module, plan: FreezePlan, head_paths: Sequence[str] = ()) -> set[str]:
    """Names (as in ``state_dict``) of every parameter and buffer the plan keeps unchanged."""
    if not plan.frozen:
        return set()
    heads = _heads(model, head_paths)
    trained_bn = {p for p, m in model.named_modules() if isinstance(m, _BN)} if plan.train_frozen_bn else set()
    out = set()
    for name, _ in _tensors(model, True):
        if _under(name, heads) or name.rpartition(".")[0] in trained_bn:
            continue
        if plan.is_frozen(name):
            out.add(name)
    return out


def _frozen_bn(model: nn.Module, plan: FreezePlan, heads: Sequence[str]) -> list[nn.Module]:
    if plan.train_frozen_bn or not plan.frozen:
        return []
    return [m for p, m in model.named_modules() if isinstance(m, _BN) and plan.is_frozen(p) and not _under(p, heads)]


def _keep_eval(module: nn.Module, args: Any) -> None:
    if module.training:
        module.train(False)


def apply_plan(model: nn.Module, plan: FreezePlan, head_paths: Sequence[str] = ()) -> None:
    """Set ``requires_grad`` from the plan (heads always trainable) and pin frozen BatchNorm to eval mode."""
    heads = _heads(model, head_paths)
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
    for m in _frozen_bn(model, plan, _heads(model, head_paths)):
        m.train(False)


def param_groups(model: nn.Module, plan: FreezePlan, lr: float, backbone_lr_mult: float = 0.1,
                 weight_decay: float = 0.0, head_paths: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Optimizer groups: the head at `lr`, the trainable backbone at ``lr * backbone_lr_mult``; frozen left out."""
    heads = _heads(model, head_paths)
    frozen = frozen_tensors(model, plan, heads)
    head, backbone = [], []
    for name, p in model.named_parameters():
        if name in frozen:
            continue
        (head if _under(name, heads) else backbone).append(p)
    groups = [{"name": "head", "params": head, "lr": lr, "weight_decay": weight_decay}]
    if backbone:
        groups.append({"name": "backbone", "params": backbone, "lr": lr * backbone_lr_mult,
                       "weight_decay": weight_decay})
    return [g for g in groups if g["params"]]


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
