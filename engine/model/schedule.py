"""Unfreezing schedules: which layers train in which epoch, and how fast each one learns.

A project's [freeze] preset (or its ticks) is stage 0, from the first epoch. `freeze.stages` adds stages, each
from an epoch on (``start``: the epochs completed before it begins). A stage freezes exactly ``frozen`` (layer
paths, as a custom plan names them; ``[]`` for none), or unfreezes the next ``unfreeze`` blocks below the
trainable ones (ULMFiT's gradual unfreezing), or keeps the layers and changes only the rates. A stage at
start 0 sets the first epochs' rates.

Rates are per *lane*: each block of the checklist (`Checklist.blocks`, input to output; the rows between two
blocks go with the block before them) and the head. The head learns at ``train.lr x lr_mult``, the top block at
the head's rate x ``backbone_lr_mult``, each lower block at ``layer_decay`` times the block above it (timm's
layer decay, fastai's log-spaced groups), and ``growth`` multiplies the blocks' rates by itself in each epoch
of the stage, up to the head's rate (Lightning's BackboneFinetuning). A rate a stage does not give is the
stage before's (``growth`` is 1 unless given); stage 0's are 1, ``train.backbone_lr_mult`` and 1.

`Schedule.plan_at(epoch)` is the one rule: training, resuming, the window's timeline and a distributed run all
ask it, so what is drawn is what runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.errors import ProjectError
from engine.model.checklist import (
    FROZEN,
    HEAD,
    PARTLY,
    TRAINABLE,
    Checklist,
    unknown_names,
    unknown_names_error,
)
from engine.model.freezing import FreezePlan

HEAD_LANE = "head"


@dataclass(frozen=True)
class Rates:
    """How fast each lane learns, relative to ``train.lr`` (see the module's docstring)."""

    lr_mult: float = 1.0
    backbone_lr_mult: float = 0.1
    layer_decay: float = 1.0
    growth: float = 1.0


class Lanes:
    """The checklist's blocks, input to output, then the head: what a schedule's rates and the activity
    figures are given for. A model without blocks has one backbone lane (the whole model but its head)."""

    def __init__(self, checklist: Checklist) -> None:
        c = checklist
        self.names: tuple[str, ...] = tuple(c.blocks) if c.blocks else ("backbone",)
        self.paths: tuple[str, ...] = tuple(c.blocks) if c.blocks else ("",)  # the module each lane shows
        of_row = np.zeros(len(c), dtype=np.int64)
        for k, block in enumerate(c.blocks):
            of_row[c.index(block):] = k  # a block's rows, then the rows up to the next block
        self.head: int | None = None
        if c.head.any():
            self.head = len(self.names)
            self.names += (HEAD_LANE,)
            self.paths += (c.head_paths[0],)
            of_row[c.head] = self.head
        self.of_row = of_row
        self._checklist = c

    def __len__(self) -> int:
        return len(self.names)

    @property
    def blocks(self) -> int:
        """How many lanes are blocks (every lane but the head)."""
        return len(self.names) - (self.head is not None)

    def of(self, tensor: str) -> int:
        """The lane of a parameter or buffer, by its name in ``state_dict``."""
        module = tensor.rpartition(".")[0]
        c = self._checklist
        return int(self.of_row[c.index(module) if c.has(module) else 0])

    def states(self, flags: np.ndarray) -> tuple[int, ...]:
        """Each lane's state under these unit flags: FROZEN, PARTLY, TRAINABLE or HEAD."""
        c = self._checklist
        units = c.editable
        n = len(self)
        edit = np.bincount(self.of_row[units], minlength=n)
        frozen = np.bincount(self.of_row[units & flags], minlength=n)
        out = []
        for k in range(n):
            if k == self.head:
                out.append(HEAD)
            elif frozen[k] == 0:
                out.append(TRAINABLE)
            else:
                out.append(FROZEN if frozen[k] == edit[k] else PARTLY)
        return tuple(out)


@dataclass(frozen=True, eq=False)
class Stage:
    """One stage: from `start` (epochs completed) on, these unit flags (the plan) and these rates."""

    index: int
    start: int
    plan: FreezePlan
    flags: np.ndarray = field(repr=False)
    states: tuple[int, ...]
    rates: Rates


@dataclass(frozen=True)
class StagePlan:
    """What trains in one epoch: the freeze plan, each lane's learning rate (None: nothing in it trains) and the
    optimizer's parameter groups, (name, lanes): the head, then the backbone as one group when its blocks share
    one rate rule (no layer decay), else one group per block."""

    epoch: int
    stage: int
    start: int
    plan: FreezePlan
    lanes: tuple[str, ...]
    states: tuple[int, ...]
    rates: tuple[float | None, ...]
    groups: tuple[tuple[str, tuple[int, ...]], ...]

    def rate(self, lane: str) -> float | None:
        return self.rates[self.lanes.index(lane)]


class Schedule:
    """A project's stages over one model's checklist (a meta-device skeleton's is enough). `strict`: a stage
    naming a layer the model lacks raises `ProjectError` (training); otherwise that name is ignored (drawing)."""

    def __init__(self, checklist: Checklist, freeze: Any, lr: float, backbone_lr_mult: float,
                 strict: bool = False) -> None:
        self.lanes = Lanes(checklist)
        self.lr = lr
        self.train_frozen_bn = freeze.train_frozen_bn
        self._editable = checklist.editable
        c = checklist.with_flags(checklist.frozen)  # loading the settings leaves the caller's checklist alone
        error = c.load(freeze)
        if error is not None and strict:
            raise error
        plan0 = (FreezePlan(frozenset(freeze.frozen), freeze.train_frozen_bn) if freeze.preset == "custom"
                 else c.plan(freeze.train_frozen_bn))
        rates = Rates(backbone_lr_mult=backbone_lr_mult)
        later = list(freeze.stages)
        skipped = 0  # a stage from epoch 0 is stage 0's rates
        if later and later[0]["start"] == 0:
            rates, skipped = _rates(rates, later.pop(0)), 1
        self.stages = [Stage(0, 0, plan0, c.frozen.copy(), self.lanes.states(c.frozen), rates)]
        for i, entry in enumerate(later, start=1):
            c = c.with_flags(self._flags(c, entry, strict, f"freeze.stages[{i - 1 + skipped}]"))
            rates = _rates(rates, entry)
            self.stages.append(Stage(i, entry["start"], c.plan(freeze.train_frozen_bn), c.frozen.copy(),
                                     self.lanes.states(c.frozen), rates))

    @classmethod
    def of_project(cls, checklist: Checklist, project: Any, strict: bool = False) -> Schedule:
        t = project.train
        return cls(checklist, project.freeze, t.lr, t.backbone_lr_mult, strict)

    def _flags(self, c: Checklist, entry: dict[str, Any], strict: bool, key: str) -> np.ndarray:
        """A stage's unit flags, from the stage before's (`c`)."""
        if "frozen" in entry:
            if strict:
                unknown = unknown_names(entry["frozen"], c.names, c.head_paths)
                if unknown:
                    error = unknown_names_error(unknown)
                    raise ProjectError(f"{key}.frozen", error.problem)
            probe = c.with_flags(c.frozen)
            probe.set_frozen(FreezePlan(frozenset(entry["frozen"])).is_frozen)
            return probe.frozen
        if "unfreeze" in entry:
            states = self.lanes.states(c.frozen)
            lowest = self.lanes.blocks  # the lowest block from which everything up to the head trains
            while lowest > 0 and states[lowest - 1] == TRAINABLE:
                lowest -= 1
            lowest = max(0, lowest - entry["unfreeze"])
            thawed = (self.lanes.of_row >= lowest) & (self.lanes.of_row != self.lanes.head)
            return c.frozen & ~thawed
        return c.frozen

    @property
    def starts(self) -> list[int]:
        return [s.start for s in self.stages]

    def stage_at(self, epoch: int) -> Stage:
        """The stage that epoch `epoch` (0-based: the epochs completed before it) runs in."""
        return next(s for s in reversed(self.stages) if s.start <= epoch)

    def plan_at(self, epoch: int) -> StagePlan:
        """The plan and every lane's learning rate in epoch `epoch` (0-based)."""
        s = self.stage_at(epoch)
        r, lanes = s.rates, self.lanes
        head = self.lr * r.lr_mult
        grow = r.growth ** (epoch - s.start)
        rates: list[float | None] = []
        for k in range(len(lanes)):
            if k == lanes.head:
                rates.append(head)
            elif s.states[k] == FROZEN and not self.train_frozen_bn:  # (its BatchNorm layers train otherwise)
                rates.append(None)
            else:
                mult = r.backbone_lr_mult * r.layer_decay ** (lanes.blocks - 1 - k) * grow
                rates.append(head * (min(mult, 1.0) if r.growth > 1 else mult))
        trained = [k for k in range(lanes.blocks) if rates[k] is not None]
        groups: list[tuple[str, tuple[int, ...]]] = [] if lanes.head is None else [("head", (lanes.head,))]
        if r.layer_decay == 1.0:
            groups.append(("backbone", tuple(trained)))
        else:
            groups += [(lanes.names[k], (k,)) for k in trained]
        return StagePlan(epoch, s.index, s.start, s.plan, lanes.names, s.states, tuple(rates),
                         tuple(g for g in groups if g[1]))

    def head_only(self) -> bool:
        """Nothing below the head ever changes: every stage freezes it all (the feature cache's condition)."""
        editable = self._editable
        return not self.train_frozen_bn and all(np.array_equal(s.flags & editable, editable) for s in self.stages)


def _rates(before: Rates, entry: dict[str, Any]) -> Rates:
    given = {k: float(entry[k]) for k in ("lr_mult", "backbone_lr_mult", "layer_decay") if k in entry}
    return replace(before, growth=float(entry.get("growth", 1.0)), **given)


# ---------------------------------------------------------------- presets and edits


def preset(name: str, checklist: Checklist, epochs: int, **options: float) -> dict[str, Any]:
    """The [freeze] values of a schedule preset for this model and number of epochs: "none" (no stages),
    "fine_tune" (fastai: `freeze_epochs` head only, then everything at half the rate, log-spaced down to 1/`lr_mult`),
    "gradual" (ULMFiT: one more block per epoch from the top, each block / `decay` of the one above),
    "backbone" (Lightning's BackboneFinetuning: at `unfreeze_at` the backbone joins at `ratio` x the head's
    rate, x `growth` per epoch up to it), "layer_decay" (timm: everything, each block x `decay` of the one above)."""
    lanes = Lanes(checklist)
    last = max(1, epochs - 1)  # the last epoch a stage can start at and still run
    if name == "none":
        return {"stages": []}
    if name == "fine_tune":
        n, mult = len(lanes), float(options.get("lr_mult", 100.0))
        decay = mult ** (-1.0 / (n - 1)) if n > 1 else 1.0
        start = min(int(options.get("freeze_epochs", 1)), last)
        return {"preset": "feature_extraction", "frozen": [], "stages": [
            {"start": start, "frozen": [], "lr_mult": 0.5, "backbone_lr_mult": decay, "layer_decay": decay}]}
    if name == "gradual":
        decay = 1.0 / float(options.get("decay", 2.6))
        steps = range(1, min(lanes.blocks, last) + 1) if epochs > 1 else range(0)
        return {"preset": "feature_extraction", "frozen": [], "stages": [
            {"start": 0, "backbone_lr_mult": decay, "layer_decay": decay},
            *({"start": k, "unfreeze": 1} for k in steps)]}
    if name == "backbone":
        at = min(int(options.get("unfreeze_at", max(1, min(10, epochs // 2)))), last)
        return {"preset": "feature_extraction", "frozen": [], "stages": [
            {"start": at, "frozen": [], "backbone_lr_mult": float(options.get("ratio", 0.1)), "layer_decay": 1.0,
             "growth": float(options.get("growth", 2.0))}]}
    if name == "layer_decay":
        decay = float(options.get("decay", 0.75))
        return {"preset": "full", "frozen": [], "stages": [
            {"start": 0, "backbone_lr_mult": decay, "layer_decay": decay}]}
    raise ProjectError("freeze.stages", f"no schedule preset {name!r}; known: {', '.join(PRESETS)}")


PRESETS = ("none", "fine_tune", "gradual", "backbone", "layer_decay")


def start_range(stages: Sequence[dict[str, Any]], i: int, epochs: int) -> tuple[int, int]:
    """Where stage `i`'s start may move: after the stage before, before the stage after, inside the run."""
    low = stages[i - 1]["start"] + 1 if i > 0 else 1
    high = stages[i + 1]["start"] - 1 if i + 1 < len(stages) else max(1, epochs - 1)
    return low, max(low, high)


def moved(stages: Sequence[dict[str, Any]], i: int, start: int) -> list[dict[str, Any]]:
    """The stages with stage `i` starting at `start` (new tables: the old list is left as it was)."""
    return [dict(s, start=start) if j == i else dict(s) for j, s in enumerate(stages)]

