"""A schedule's stage in a live model and optimizer (`engine.model.schedule` says what each epoch runs).

`apply_stage` is the one transition: ``requires_grad`` and the frozen BatchNorm layers from the stage's plan, the
optimizer's parameter groups rebuilt as the stage's `StagePlan.groups` say (no parameter in two groups; state kept
for every parameter that goes on training, so Adam's moments survive a transition, and a parameter unfrozen now
starts with none), then the rates. The groups are a pure function of the stage, so a resumed run builds the
groups its checkpoint was taken with. `SpanCheck` is the frozen-tensor check per stage: a tensor frozen until
epoch k must be bit-identical at the end of epoch k-1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from engine.model.checklist import Checklist
from engine.model.freezing import FrozenCheck, apply_plan, snapshot_frozen, verify_frozen
from engine.model.schedule import Lanes, Schedule, StagePlan


def groups_for(model: nn.Module, plan: StagePlan, lanes: Lanes, weight_decay: float) -> list[dict[str, Any]]:
    """The optimizer's groups for a stage whose plan is applied: each trainable parameter, in the model's order,
    in the group of its lane, at that lane's rate (``base_lr``; the run's curve scales it per step)."""
    group_of = {lane: i for i, (_, members) in enumerate(plan.groups) for lane in members}
    groups = [{"name": name, "params": [], "base_lr": plan.rates[members[0]], "lr": plan.rates[members[0]],
               "weight_decay": weight_decay} for name, members in plan.groups]
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups[group_of[lanes.of(name)]]["params"].append(p)
    return [g for g in groups if g["params"]]


def apply_stage(model: nn.Module, optimizer: torch.optim.Optimizer, curve: Any, plan: StagePlan, lanes: Lanes,
                head_paths: Sequence[str], weight_decay: float) -> None:
    """Switch the model and its optimizer to `plan`'s stage (see the module's docstring); `curve` is the run's
    `engine.train.optim.RateCurve`."""
    apply_plan(model, plan.plan, head_paths)
    groups = groups_for(model, plan, lanes, weight_decay)
    kept = {id(p) for g in groups for p in g["params"]}
    for p in [p for p in optimizer.state if id(p) not in kept]:
        del optimizer.state[p]
    optimizer.param_groups.clear()
    for g in groups:
        optimizer.add_param_group(g)
    curve.apply()


def set_rates(optimizer: torch.optim.Optimizer, curve: Any, plan: StagePlan) -> None:
    """The stage's rates for this epoch (they change within a stage that grows them)."""
    rates = {name: plan.rates[members[0]] for name, members in plan.groups}
    for g in optimizer.param_groups:
        g["base_lr"] = rates[g["name"]]
    curve.apply()


class SpanCheck:
    """The frozen tensors of each stage, snapshotted as it begins and checked as it ends."""

    def __init__(self, model: nn.Module, plan: StagePlan, head_paths: Sequence[str], epoch: int) -> None:
        self.checks: list[tuple[int, int, FrozenCheck]] = []  # (first epoch, last epoch, check), 1-based
        self._model, self._heads = model, head_paths
        self.begin(plan, epoch)

    def begin(self, plan: StagePlan, epoch: int) -> None:
        """Snapshot `plan`'s frozen tensors before epoch `epoch` (0-based) runs."""
        self._snapshot = snapshot_frozen(self._model, plan.plan, self._heads)
        self._from = epoch + 1

    def end(self, epoch: int) -> FrozenCheck:
        """Check the span that ends after `epoch` completed epochs."""
        check = verify_frozen(self._model, self._snapshot)
        self.checks.append((self._from, epoch, check))
        return check

    def total(self) -> FrozenCheck:
        changed = sorted({n for _, _, c in self.checks for n in c.changed})
        return FrozenCheck(ok=all(c.ok for _, _, c in self.checks), changed=changed,
                           checked=sum(c.checked for _, _, c in self.checks))


class Staging:
    """A run's schedule as it goes: the stage now, when the next begins, the frozen-tensor check of each span.

    Made once the model is assembled, for the first epoch this run trains (`first`: a resumed run's is later);
    it applies that epoch's plan. The loop applies each new stage (`_Fit.apply_stage`) between `next` and `began`.
    """

    def __init__(self, model: nn.Module, project: Any, head_paths: Sequence[str], first: int,
                 log: Callable[..., None]) -> None:
        self.schedule = Schedule.of_project(Checklist(model, head_paths), project, strict=True)
        self.epochs = project.train.epochs
        self.plan = self.schedule.plan_at(first)
        self.log = log
        apply_plan(model, self.plan.plan, head_paths)
        # Stage 0's frozen tensors are checked against the weights as built, also in a resumed run.
        self.spans = SpanCheck(model, self.plan, head_paths, first)

    def groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        return groups_for(model, self.plan, self.schedule.lanes, weight_decay)

    def resumed(self, optimizer: torch.optim.Optimizer, curve: Any, first: int) -> None:
        """After a checkpoint was restored: the rates from the schedule (a checkpoint from before schedules has
        none), and a later stage's frozen tensors as the checkpoint has them."""
        set_rates(optimizer, curve, self.plan)
        if self.plan.stage > 0:
            self.spans.begin(self.plan, first)

    def next(self, done: int, optimizer: torch.optim.Optimizer, curve: Any) -> StagePlan | None:
        """After `done` epochs: the next epoch's plan when a new stage begins with it (its span before is checked);
        else None, with this stage's rates for that epoch set."""
        if done >= self.epochs:
            return None
        plan = self.schedule.plan_at(done)
        if plan.stage == self.plan.stage:
            if plan.rates != self.plan.rates:
                set_rates(optimizer, curve, plan)
            self.plan = plan
            return None
        self.end(done)
        return plan

    def began(self, plan: StagePlan, done: int) -> None:
        self.plan = plan
        self.spans.begin(plan, done)
        trained = [n for n, r in zip(plan.lanes, plan.rates, strict=True) if r is not None]
        self.log(f"stage {plan.stage} from epoch {done + 1}: training {', '.join(trained)}")

    def end(self, done: int) -> FrozenCheck:
        """Check the span that ends after `done` epochs; a change is logged as an error."""
        check = self.spans.end(done)
        if not check.ok:
            self.log(f"frozen tensors changed during training (epochs {self.spans.checks[-1][0]}-{done}): "
                     f"{', '.join(check.changed[:5])}", "error")
        return check


class StageTransitions:
    """The schedule's part of `engine.train.loop._Fit` (a mixin): after each epoch, the next epoch's rates or the
    next stage. Uses its `staging`, state, assembled model and `wrap_trainee`."""

    def next_stage(self, done: int) -> None:
        """After `done` epochs: the next epoch's rates, or the next stage when one begins with it."""
        s = self.state
        plan = self.staging.next(done, s.optimizer, s.scheduler)
        if plan is not None:  # a new stage of the schedule begins with the next epoch
            self.apply_stage(plan)
            self.staging.began(plan, done)

    def apply_stage(self, plan: StagePlan) -> None:
        """The one transition between the schedule's stages: requires_grad, frozen BatchNorm, the optimizer's
        groups and rates (`engine.train.stages.apply_stage`), then DistributedDataParallel again over what
        trains now (`wrap_trainee`; every rank makes the same transition after the same epoch)."""
        s = self.state
        apply_stage(s.model, s.optimizer, s.scheduler, plan, self.staging.schedule.lanes, self.a.head_paths,
                    self.project.train.weight_decay)
        self.a.plan = plan.plan
        self.wrap_trainee()
