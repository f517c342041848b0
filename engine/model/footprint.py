"""How much memory training a project's model takes, known before anything is built for real.

Counted from the model's skeleton (the project's architecture, head and freeze plan on the meta device: no
weights, no memory), in float32 (mixed precision keeps float32 weights): the weights, a gradient and the
optimizer's state for each trainable one (AdamW two, SGD one), and the copy of weights and optimizer state the
loop keeps in memory to retry an epoch after running out of memory. Activations are left out (they scale with
the images per pass, which the loop halves when memory runs out), so this is what a run needs at the least.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.model.assemble import skeleton
from engine.model.modpath import under

FLOAT_BYTES = 4


@dataclass(frozen=True)
class Footprint:
    total: int  # parameters
    trainable: int
    head: int  # parameters of the new head (all trainable)

    def on_device(self, optimizer: str) -> int:
        """Bytes on the training device: weights, gradients, optimizer state."""
        states = 2 if optimizer == "adamw" else 1
        return FLOAT_BYTES * (self.total + self.trainable * (1 + states))

    def kept_copy(self, optimizer: str) -> int:
        """Bytes of the in-memory checkpoint (in the machine's RAM): weights and optimizer state."""
        states = 2 if optimizer == "adamw" else 1
        return FLOAT_BYTES * (self.total + self.trainable * states)


def footprint(project: Any, num_classes: int) -> Footprint:
    """The parameter counts of the model `project` trains for `num_classes` classes."""
    f, h = project.freeze, project.head
    return _counts(project.model.arch, h.kind, tuple(h.hidden), float(h.dropout), num_classes, f.preset,
                   f.last_blocks, tuple(f.frozen), f.train_frozen_bn)


@lru_cache(maxsize=64)
def _counts(arch: str, kind: str, hidden: tuple[int, ...], dropout: float, num_classes: int, preset: str,
            last_blocks: int, frozen: tuple[str, ...], train_frozen_bn: bool) -> Footprint:
    from engine.project import Project

    p = Project()
    p.model.arch = arch
    p.head.kind, p.head.hidden, p.head.dropout = kind, list(hidden), dropout
    p.freeze.preset, p.freeze.last_blocks, p.freeze.frozen = preset, last_blocks, list(frozen)
    p.freeze.train_frozen_bn = train_frozen_bn
    built = skeleton(p, num_classes)
    named = list(built.model.named_parameters())
    head = sum(t.numel() for name, t in named if under(name, built.head_paths)) if kind != "keep" else 0
    return Footprint(sum(t.numel() for _, t in named), sum(t.numel() for _, t in named if t.requires_grad), head)
