"""One epoch of `engine.train.loop.fit`: its training pass, batch by batch, and its validation pass.

A batch larger than the images one forward pass may take (`micro`, halved after running out of memory) is run in
parts whose gradients add up to the batch's, so there is still one optimizer step per batch. A stop inside a
step (`engine.train.interrupt`) throws the batch away. Every `train.activity_every` steps the step is measured
(`engine.train.activity`: which layers learn) and a `LayerActivity` event follows its `BatchEnded`.
"""

from __future__ import annotations

import math

import torch

from engine import events as ev
from engine.distributed import ddp
from engine.errors import DataError
from engine.train.feature_cache import set_train_mode
from engine.train.interrupt import BufferCopy, StopRequested
from engine.train.steps import Pass, autocast, batches, to_device


class Epoch:
    """The epoch's part of `engine.train.loop._Fit` (a mixin): uses its state, loaders, criterion, world and
    stop flag as `_Fit.setup` made them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trained(x)

    def lr(self) -> float:
        return float(next(g["lr"] for g in self.state.optimizer.param_groups if g.get("name") == "head"))

    def eta(self, epoch: int, sec_per_step: float, steps_left: int) -> float:
        """Seconds to the end: the rest of this epoch, the later epochs, and each validation pass left."""
        epochs_after = self.project.train.epochs - epoch
        return sec_per_step * (steps_left + epochs_after * self.steps) + self.val_seconds * (epochs_after + 1)

    def train_epoch(self, epoch: int) -> Pass | None:
        """One epoch of training; None when stopped part-way."""
        s, t = self.state, self.project.train
        torch.manual_seed(t.seed * 100_003 + epoch + 1_000_003 * self.world.rank)
        self.train_loader.generator.manual_seed(t.seed * 100_003 + epoch)
        ddp.set_epoch(self.train_loader, epoch)
        set_train_mode(s.model, self.a, self.backbone_frozen)
        acc = Pass()
        start = self.clock()
        for step, (x, y, failures) in enumerate(batches(self.train_loader), start=1):
            self._note_failures(failures)
            if len(y):
                x, y = to_device(x, self.device), y.to(self.device, non_blocking=True)
                # With no kept weights to fall back on, a stop inside the step puts back the buffers it changed.
                before = None
                if s.best_state is None:
                    before = BufferCopy(self.trainee)
                stopped = False
                try:
                    loss, out = self.step(x, y)
                except StopRequested:
                    stopped = True
                if stopped:  # outside the except block: its traceback no longer holds the batch's tensors
                    self.discard_batch(before)
                    return None
                lr = self.lr()
                if s.scheduler is not None:
                    s.scheduler.step()
                batch_loss = float(loss)
                batch_correct = int((out.argmax(1) == y).sum())
            elif self.world.distributed:  # every rank must take every step, or the others wait for it
                raise DataError(f"rank {self.world.rank}: no image of a training batch in epoch {epoch} could be "
                                f"read (e.g. {failures[0].path}: {failures[0].reason}); remove the unreadable "
                                f"files and continue the run with --resume")
            else:
                lr, batch_loss, batch_correct = self.lr(), math.nan, 0
            batch_loss, batch_correct, seen = self.world.batch(batch_loss, batch_correct, len(y))
            if seen:
                acc.add(batch_loss, batch_correct, seen)
            s.global_step += 1
            acc.seconds = self.clock() - start
            self.emit(ev.BatchEnded(
                epoch=epoch, step=step, steps_per_epoch=self.steps, global_step=s.global_step,
                loss=batch_loss, accuracy=batch_correct / seen if seen else math.nan, lr=lr,
                images_per_second=acc.seen / acc.seconds if acc.seconds > 0 else 0.0,
                eta_seconds=self.eta(epoch, acc.seconds / step, self.steps - step)))
            if self.measured is not None:  # which layers learned in this step
                self.emit(self.measured)
                if self.measured.changed_frozen:
                    self.log(f"frozen layers changed in step {s.global_step}: "
                             f"{', '.join(self.measured.changed_frozen)}", "error")
                self.measured = None
            if self.stopping():
                return None
        return acc

    def _backward(self, loss: torch.Tensor) -> None:
        scaler = self.state.scaler
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch, in passes of at most `self.micro` images; (loss, logits), detached."""
        s = self.state
        s.optimizer.zero_grad(set_to_none=True)
        if len(y) <= self.micro:
            with autocast(self.device, self.amp):
                out = self.forward(x)
            loss = self.criterion(out.float(), y)
            self._backward(loss)
            loss, out = loss.detach(), out.detach()
        else:  # the batch's mean loss, as a sum of its parts: the same gradient, less memory at once
            w = self.criterion.weight
            denom = w[y].sum() if w is not None else torch.tensor(float(len(y)), device=y.device)
            loss, outs = torch.zeros((), device=y.device), []
            parts = list(zip(x.split(self.micro), y.split(self.micro), strict=True))
            for i, (xc, yc) in enumerate(parts):
                with ddp.no_sync(self.trained, sync=i == len(parts) - 1):
                    with autocast(self.device, self.amp):
                        part = self.forward(xc)
                    part_loss = self.per_image_loss(part.float(), yc).sum() / denom
                    self._backward(part_loss)
                loss += part_loss.detach()
                outs.append(part.detach())
            out = torch.cat(outs)
        measuring = self.activity is not None and self.activity.due(s.global_step + 1)
        if measuring:
            self.activity.before(s.optimizer, s.scaler)
        if s.scaler is not None:
            s.scaler.step(s.optimizer)
            s.scaler.update()
        else:
            s.optimizer.step()
        if measuring:
            self.measured = self.activity.after(s.global_step + 1, self.staging.plan.epoch + 1)
        return loss, out

    def evaluate(self) -> Pass | None:
        """The validation figures. Under torchrun each rank evaluates its dealt batches with rank 0's buffers,
        and the per-batch figures are added up in batch order, exactly as one process adds them."""
        self.world.sync_buffers(self.trainee)
        model = self.state.model
        model.eval()
        dealt = self.val_loader.sampler
        rows = torch.zeros((dealt.total, 3), dtype=torch.float64)  # each batch's loss, correct, images
        start = self.clock()
        with torch.no_grad():
            for k, (x, y, failures) in enumerate(batches(self.val_loader)):
                self._note_failures(failures)
                if self.layer_stop.is_set():
                    return None
                if not len(y):
                    continue
                x, y = to_device(x, self.device), y.to(self.device, non_blocking=True)
                try:
                    with autocast(self.device, self.amp):
                        out = torch.cat([self.trainee(xc) for xc in x.split(self.micro)])
                except StopRequested:
                    return None
                loss = self.criterion(out.float(), y)
                rows[dealt.batches()[k]] = torch.tensor([float(loss), int((out.argmax(1) == y).sum()), len(y)],
                                                        dtype=torch.float64)
        acc = Pass()
        for loss, correct, n in self.world.table(rows).tolist():
            if n:
                acc.add(loss, int(correct), int(n))
        acc.seconds = self.clock() - start
        return acc

    def discard_batch(self, before: BufferCopy | None) -> None:
        """After a stop inside a training step: drop its gradients and put back the buffers its forward pass
        changed (`before`; None when the best weights replace the model's at the end anyway). The optimizer
        had not stepped, so the model is as a stop just before the batch would have left it."""
        self.state.optimizer.zero_grad(set_to_none=True)
        if before is not None:
            before.put_back()
