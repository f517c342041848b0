"""The layer tree: every module of a model with its parameter counts, and which ones are "blocks".

Blocks are the units a person freezes or thaws as "the last N blocks" and the rows worth showing at the
top level. They are found by a rule over the module tree rather than per-family names: starting at the
root, a child is opened up (its children become candidates) when it holds almost all of its parent's
backbone parameters (ViT's ``encoder`` and ``encoder.layers``, MaxViT's ``blocks``), or when it is the only
plain ``Sequential``/``ModuleList`` among its siblings (``features`` in VGG, MobileNet, EfficientNet,
ConvNeXt, DenseNet, Swin; RegNet's ``trunk_output``). Normalisation layers between blocks (ResNet ``bn1``,
ViT ``encoder.ln``) and the layers that share the head's container (VGG's first two ``classifier``
Linears) are not blocks; they follow their neighbours.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from torch import nn

from engine.model.heads import heads_of
from engine.model.modpath import is_ancestor, join, under

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
_BIG = 0.9  # share of the parent's backbone parameters that makes a child worth opening up


@dataclass
class LayerInfo:
    """One module: its dotted path ("" for the root), counts that include its descendants, its children."""

    path: str
    name: str
    type_name: str
    own_params: int
    total_params: int
    trainable_params: int
    is_block: bool
    children: list[LayerInfo] = field(default_factory=list)
    is_head: bool = False

    @property
    def state(self) -> str:
        """"trainable", "frozen", "partial", or "-" for a module without parameters."""
        if self.total_params == 0:
            return "-"
        if self.trainable_params == self.total_params:
            return "trainable"
        return "frozen" if self.trainable_params == 0 else "partial"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "type": self.type_name, "own_params": self.own_params,
                "total_params": self.total_params, "trainable_params": self.trainable_params,
                "state": self.state, "is_block": self.is_block, "is_head": self.is_head,
                "children": [c.to_dict() for c in self.children]}


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(model: nn.Module, head_paths: Sequence[str] = ()) -> LayerInfo:
    """The tree of `model`; trainable counts are of the parameters that require grad (an applied plan's)."""
    block_set = set(blocks(model, head_paths))
    heads = tuple(head_paths)

    def visit(module: nn.Module, path: str, name: str) -> LayerInfo:
        own = list(module.named_parameters(recurse=False))
        own_n = sum(p.numel() for _, p in own)
        own_t = sum(p.numel() for _, p in own if p.requires_grad)
        children = [visit(child, join(path, n), n) for n, child in module.named_children() if child is not None]
        return LayerInfo(
            path=path, name=name, type_name=type(module).__name__, own_params=own_n,
            total_params=own_n + sum(c.total_params for c in children),
            trainable_params=own_t + sum(c.trainable_params for c in children),
            is_block=path in block_set, children=children, is_head=path in heads)

    return visit(model, "", "")


def blocks(model: nn.Module, head_paths: Sequence[str] = ()) -> list[str]:
    """Block paths in registration order (input -> output for torchvision models): the unit of "last N".
    A timm model says its own (`timm_zoo.blocks`, from its parameter groups)."""
    heads = heads_of(model, head_paths)
    if callable(getattr(model, "group_matcher", None)):
        from engine.model.timm_zoo import blocks as timm_blocks

        return timm_blocks(model, heads, _NORMS)
    found: list[str] = []

    def open_up(module: nn.Module, path: str) -> None:
        kids = [(join(path, n), c) for n, c in module.named_children()
                if c is not None and not under(join(path, n), heads) and _count(c) > 0]
        backbone = sum(_count(c) for p, c in kids if not is_ancestor(p, heads))
        plain = [p for p, c in kids if type(c) in (nn.Sequential, nn.ModuleList) and not is_ancestor(p, heads)]
        for p, child in kids:
            if is_ancestor(p, heads) or isinstance(child, _NORMS):
                continue
            n_children = sum(1 for _ in child.children())
            sole_container = plain == [p] and n_children >= 2
            if n_children >= 2 and (sole_container or _count(child) > _BIG * backbone):
                open_up(child, p)
            else:
                found.append(p)

    open_up(model, "")
    return found


def model_names(model: nn.Module) -> set[str]:
    """Every module path and tensor name (parameters and buffers) of `model`: what a custom plan may name."""
    tensors = chain(model.named_parameters(), model.named_buffers())
    return {p for p, _ in model.named_modules()} | {n for n, _ in tensors}


def walk(info: LayerInfo) -> Iterator[LayerInfo]:
    """Every node, depth first, parents before children."""
    yield info
    for child in info.children:
        yield from walk(child)
