"""Which layers are learning: every N optimizer steps, per block (a lane of `engine.model.schedule.Lanes`), the
gradient norm and the update ratio ||dW|| / ||W|| of that step.

Per block, not per tensor: a few numbers per measurement, whatever the model (wandb's per-tensor histograms
slow training and flood the page, wandb#3701, #4759). Each figure is one ``torch._foreach_norm`` over the tensors,
folded into blocks by root-sum-square on the device, and read back once. The trained tensors are copied before the
step (the update is their difference after it); the others are only measured before and after, so a frozen block
costs two norms and reports exactly 0 unless something changed it, which is a freeze bug and reported as one
(`LayerActivity.changed_frozen`). Which tensors train is read at every measurement, so blocks unfrozen later by a
schedule show up from their first step (wandb#2625).

With a `budget` (a share of the training time), the interval doubles whenever measuring took more than that share
of the time since the last measurement.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from engine.events import LayerActivity
from engine.model.schedule import Lanes


class Activity:
    """Measures `model`'s blocks every `every` optimizer steps: `due(step)`, then `before` and `after` the step."""

    def __init__(self, model: nn.Module, lanes: Lanes, every: int, budget: float = 0.0) -> None:
        named = list(model.named_parameters())
        self.params = [p for _, p in named]
        self.lane_of = [lanes.of(n) for n, _ in named]
        self.names = lanes.names
        self.device = self.params[0].device if self.params else torch.device("cpu")
        self.every, self.budget = every, budget
        self._last: float | None = None  # when the last measurement ended
        self._spent = 0.0

    def due(self, step: int) -> bool:
        """Whether optimizer step `step` (1-based) is measured."""
        return self.every > 0 and step % self.every == 0

    @torch.no_grad()
    def before(self, optimizer: torch.optim.Optimizer | None = None, scaler: torch.amp.GradScaler | None = None) -> None:
        """Right before the optimizer's step, after the backward pass (gradients unscaled first under AMP)."""
        start = time.perf_counter()
        if scaler is not None and optimizer is not None:
            scaler.unscale_(optimizer)
        self._trained = [i for i, p in enumerate(self.params) if p.requires_grad]
        self._still = [i for i, p in enumerate(self.params) if not p.requires_grad]
        trained = [self.params[i] for i in self._trained]
        self._copies = torch._foreach_mul(trained, 1.0) if trained else []
        with_grad = [i for i in self._trained if self.params[i].grad is not None]
        self._grad = self._fold(with_grad, _norms([self.params[i].grad for i in with_grad]))
        self._still_before = _norms([self.params[i] for i in self._still])
        self._spent = time.perf_counter() - start

    @torch.no_grad()
    def after(self, step: int, epoch: int) -> LayerActivity:
        """Right after the optimizer's step: the figures of step `step` in epoch `epoch` (1-based)."""
        start = time.perf_counter()
        trained = [self.params[i] for i in self._trained]
        moved = _norms(torch._foreach_sub(trained, self._copies)) if trained else []
        weight = self._fold(self._trained, _norms(self._copies))
        change = [(a - b).abs() for a, b in zip(_norms([self.params[i] for i in self._still]), self._still_before,
                                                    strict=True)]
        update = self._fold(self._trained + self._still, moved + change)
        still_changed = self._fold(self._still, change)
        weight_all = torch.where(weight > 0, weight, self._fold(self._still, self._still_before))
        ratio = torch.where(weight_all > 0, update / weight_all, torch.zeros_like(update))
        trained_lanes = self._fold(self._trained, [torch.ones((), device=self.device)] * len(self._trained))
        grad, ratio, changed, flags = torch.stack([self._grad, ratio, still_changed, trained_lanes]).cpu().tolist()
        self._copies = []
        self._stretch(self._spent + time.perf_counter() - start)
        return LayerActivity(
            global_step=step, epoch=epoch, blocks=self.names, trained=tuple(f > 0 for f in flags),
            grad_norms=tuple(grad), update_ratios=tuple(ratio), every=self.every,
            changed_frozen=tuple(n for n, c in zip(self.names, changed, strict=True) if c > 0))

    def _fold(self, indices: list[int], norms: list[torch.Tensor]) -> torch.Tensor:
        """Per block, the root-sum-square of these tensors' norms (float64, on the model's device: read back once)."""
        out = torch.zeros(len(self.names), dtype=torch.float64, device=self.device)
        if norms:
            lanes = torch.tensor([self.lane_of[i] for i in indices], device=self.device)
            out.index_add_(0, lanes, torch.stack([n.to(torch.float64) for n in norms]) ** 2)
        return out.sqrt()

    def _stretch(self, cost: float) -> None:
        """Within the budget: measure half as often while a measurement costs more than its share."""
        now = time.perf_counter()
        if self.budget > 0 and self._last is not None and cost > self.budget * (now - self._last):
            self.every *= 2
        self._last = now


def _norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each tensor's L2 norm (one kernel per device and dtype)."""
    return list(torch._foreach_norm(tensors)) if tensors else []
