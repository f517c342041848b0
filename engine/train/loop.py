"""The training loop: small and explicit, with named events delivered to callbacks.

    FitStarted -> [epoch: train batches (BatchEnded each) -> validation -> EpochEnded] -> FitEnded

Everything the loop changes lives in one `LoopState` (model, optimizer, scheduler, scaler, counters,
history, best weights), and every epoch reseeds its own randomness from (seed, epoch), so a checkpoint of
that state after an epoch is enough to resume exactly.

When everything below the head is frozen and augmentation is off, the backbone is a fixed function of the
image: its features are computed once and only the head is trained on them (the feature cache).

Given a checkpoint sink (a run folder's, `engine.runs.checkpoint.CheckpointFile`), the state is checkpointed
after each epoch (the state before the first is kept in memory only: the seed makes it again), and
`resume_from` continues from such a checkpoint, on the run's classes and split (`engine.train.resumed_data`).
Out of memory in a step does not end the run: the epoch starts again from the last checkpoint with each batch split in half
(gradients of the parts are summed, so one optimizer step per batch as before), down to one image at a time
(`engine.train.checkpointing`).

A project's unfreezing schedule (`engine.model.schedule`) changes the plan and the rates between epochs
(`engine.train.stages`); every N steps a step is measured for which layers learn (`engine.train.activity`).

The stop flag is checked after every batch and, through hooks on the model (`engine.train.interrupt`),
between its layers: a stop inside a slow batch ends it before its next layer, the batch is thrown away, and
the run ends as after a stop between batches.

Under torchrun (`world`, `engine.distributed`) every rank runs this loop on its share of each batch, the model
(or the head on cached features) in DistributedDataParallel: the ranks agree after every batch whether to stop
(a stop inside a batch would leave the others waiting for its gradients), validate their dealt batches and
add up the figures, and only rank 0 has the run folder's sinks. Out of memory ends a distributed run (one
rank cannot run its epoch again alone): the last checkpoint continues it.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from engine import events as ev
from engine.device import autocast_dtype, pick_device
from engine.distributed import ddp
from engine.distributed.world import World
from engine.errors import DataError
from engine.io.weights import loadable
from engine.loading import DataBundle, LoadFailure, make_loader, prepare_data
from engine.model.assemble import assemble
from engine.model.zoo import arch_info, effective_image_size
from engine.preflight import raise_first
from engine.project import Project
from engine.train import state as st
from engine.train.activity import Activity
from engine.train.checkpointing import Checkpointing
from engine.train.epoch import Epoch
from engine.train.feature_cache import (
    FeatureCache,
    FeatureStore,
    backbone_frozen,
    build_cache,
    shared,
)
from engine.train.interrupt import StopChecks, StopRequested
from engine.train.optim import class_weights, make_optimizer, make_scheduler
from engine.train.resumed_data import as_the_run_had, split_record
from engine.train.stages import StageTransitions, Staging
from engine.train.summary import fit_summary

Callback = Callable[[Any], None]


class StopFlag(threading.Event):
    """Set from any thread to stop training before the current batch's next layer; the best model so far
    is kept."""


@dataclass
class FitResult:
    model: nn.Module  # the best weights by validation accuracy (the last ones if no epoch finished)
    classes: list[str]
    history: list[ev.EpochEnded]
    summary: dict[str, Any]
    skipped: list[tuple[str, str]]  # (path, reason): unusable files, at scan time and at load time
    stopped_by_user: bool
    data: DataBundle | None = None  # the splits it trained and validated on (and the test split it left alone)


def project_data(project: Project) -> DataBundle:
    """The project's images as `fit` reads them: sized and preprocessed for its architecture's weights."""
    info = arch_info(project.model.arch)
    sized = project.copy()
    sized.data.image_size = effective_image_size(info, project.data.image_size)[0]
    return prepare_data(sized, info.preprocess)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- the loop


class _Fit(Epoch, Checkpointing, StageTransitions):
    """One call of `fit`: set-up, then the epochs. Kept as an object so each phase is a short method; the epoch
    (`engine.train.epoch`), the checkpoints (`engine.train.checkpointing`) and the schedule's transitions
    (`engine.train.stages`) are its parts in their own modules."""

    def __init__(self, project: Project, callbacks: Iterable[Callback], stop: threading.Event | None,
                 run_dir: str, allow_cache: bool | FeatureStore, checkpoints: st.CheckpointSink | None = None,
                 resume_from: st.Checkpoint | None = None, world: World | None = None) -> None:
        self.project = project
        self.world = world or World()
        self.checkpoints = checkpoints
        self.resume_from = resume_from
        self.micro = project.train.batch_size  # images per forward pass; halved on out-of-memory
        self.oom_retries: list[dict[str, Any]] = []
        self.allow_cache = allow_cache
        self.callbacks = list(callbacks)
        self.stop = stop if stop is not None else StopFlag()
        # What stops a batch or a pass part-way: the stop flag in one process; never under torchrun, where the
        # ranks stop together between batches (`stopping`).
        self.layer_stop = self.stop if not self.world.distributed else threading.Event()
        self.run_dir = run_dir
        self.load_failures: dict[str, str] = {}
        self.train_loader: DataLoader | None = None
        self.val_loader: DataLoader | None = None
        self.val_seconds = 0.0  # the last validation pass, for the ETA
        self.stop_checks: StopChecks | None = None
        self.trainee: nn.Module | None = None  # what trains: the model, or its head on cached features
        self.trained: nn.Module | None = None  # the same in DistributedDataParallel under torchrun
        self.held = 0.0  # seconds the callbacks held the loop (a pause, the window's updates)

    def emit(self, event: Any) -> None:
        start = time.perf_counter()
        for cb in self.callbacks:
            cb(event)
        self.held += time.perf_counter() - start

    def clock(self) -> float:
        """Seconds that leave out the time the callbacks held the loop: a paused run's figures count training."""
        return time.perf_counter() - self.held

    def log(self, text: str, level: str = "info") -> None:
        self.emit(ev.LogMessage(text, level))

    # -- set-up

    def setup(self) -> None:
        p, t = self.project, self.project.train
        raise_first(p)
        self.device = self.world.place(pick_device(t.device))
        self.amp = autocast_dtype(self.device, t.amp)
        _seed_everything(t.seed)
        self.data: DataBundle = project_data(p)
        for warning in self.data.warnings:
            self.log(warning, "warning")
        if self.resume_from is not None:  # the run's classes and its own split, or a DataError
            self.data, changed = as_the_run_had(self.data, self.resume_from.meta)
            if changed:
                self.log(changed, "warning")
        self.split = split_record(self.data)
        self.a = assemble(p, len(self.data.classes), self.device, classes=list(self.data.classes))
        for note in self.a.notes:
            self.log(note, "warning")
        model = self.a.model
        if self.device.type in ("cuda", "cpu") and any(isinstance(m, nn.Conv2d) for m in model.modules()):
            model.to(memory_format=torch.channels_last)  # CPU: 0.98-1.77x a float32 step (bench/cpu_formats.py)
        self.stop_checks = StopChecks(model, self.layer_stop)
        pin = self.device.type == "cuda"
        self.train_loader = ddp.train_loader(self.data.train, self.world, t.batch_size, t.seed, pin_memory=pin)
        self.val_loader = ddp.val_loader(self.data.val, self.world, t.batch_size, t.seed, pin_memory=pin)
        first = self.resume_from.epoch if self.resume_from is not None else 0
        self.staging = Staging(model, p, self.a.head_paths, first, self.log)  # the schedule's stage now
        self.a.plan = self.staging.plan.plan
        self.backbone_frozen = backbone_frozen(model, self.a) and self.staging.schedule.head_only()
        optimizer = make_optimizer(t, self.staging.groups(model, t.weight_decay))
        self.activity = (Activity(model, self.staging.schedule.lanes, t.activity_every, t.activity_budget)
                         if t.activity_every else None)
        self.measured: ev.LayerActivity | None = None
        self.steps = len(self.train_loader)  # a last batch of one image is left out (`loading.NoLoneBatch`)
        scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        self.state = st.LoopState(model, optimizer, make_scheduler(t, optimizer, t.epochs * self.steps), scaler)
        weight = class_weights(self.data.class_counts()).to(self.device) if t.class_weights else None
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=t.label_smoothing)
        self.per_image_loss = nn.CrossEntropyLoss(weight=weight, label_smoothing=t.label_smoothing, reduction="none")
        if self.checkpoints is not None:
            self.checkpoints.reserve(model, t.optimizer)
        if self.resume_from is not None:
            st.restore(self.resume_from, self.state, self.train_loader.generator)
            self.staging.resumed(self.state.optimizer, self.state.scheduler, first)
            self.micro = int(self.resume_from.meta["micro_batch"])
            self.load_failures.update(self.resume_from.meta["load_failures"])
            self.log(f"resuming after epoch {self.state.epoch} of {t.epochs}")
        self.cache: FeatureCache | None = None
        if self.allow_cache and self.backbone_frozen and p.data.augment == "none":
            cache, out_of_memory = None, False
            try:
                cache = self._try_cache()
            except torch.OutOfMemoryError:
                out_of_memory = True
            except StopRequested:  # the run ends at once: `run` sees the flag
                cache = None
            if out_of_memory:  # the loop's own retries take it from here, a batch at a time
                self._free_memory()
                self.log("out of memory while caching the backbone's features; training without the cache",
                         "warning")
            self.cache = shared(cache, self.world)  # every rank's part, on every rank; or none on any
            if self.cache is not None:
                self._note_failures(self.cache.failures)
                self.train_loader = ddp.train_loader(self.cache.train, self.world, t.batch_size, t.seed, num_workers=0)
                self.val_loader = ddp.val_loader(self.cache.val, self.world, t.batch_size, t.seed, num_workers=0)
            elif cache is not None:
                self.log("another process could not cache its features; training without the cache", "warning")
        self.wrap_trainee()
        if self.world.distributed:
            self.log(f"{self.world.size} processes, {ddp.per_rank_batch(t.batch_size, self.world)} of the {t.batch_size} images of "
                     f"each step on each (DistributedDataParallel over {World.backend_for(self.device)})")

    def _try_cache(self) -> FeatureCache | None:
        """The backbone's features of this rank's part of the images (all of them in one process)."""
        t = self.project.train
        self.log(f"everything below the head is frozen and augmentation is off: caching the backbone's "
                 f"features for {len(self.data.train) + len(self.data.val)} images")
        pin = self.device.type == "cuda"
        in_order = make_loader(ddp.shard(self.data.train, self.world), t.batch_size, False, t.seed, pin_memory=pin)
        val = make_loader(ddp.shard(self.data.val, self.world), t.batch_size, False, t.seed, pin_memory=pin)
        store = self.allow_cache if isinstance(self.allow_cache, FeatureStore) and not self.world.distributed else None
        cache = build_cache(self.state.model, self.a, in_order, val, self.device, self.amp, self.layer_stop, store)
        if cache is None and not self.stop.is_set():
            self.log("this model's output is not a function of its head's input alone; training without "
                     "the feature cache", "warning")
        return cache

    def wrap_trainee(self) -> None:
        """What trains (the model, or the head on cached features), in DistributedDataParallel over the
        parameters that train now. Called at the start, and again by whatever changes which parameters train
        (an unfreezing transition), on every rank at the same step: DDP averages the gradients only of the
        parameters that required grad when it was built (`engine.distributed.ddp.wrap`)."""
        self.trainee = self.cache.head if self.cache is not None else self.state.model
        self.trained = ddp.wrap(self.trainee, self.world)

    def _note_failures(self, failures: list[Any]) -> None:
        for f in failures:
            if f.path not in self.load_failures:
                self.load_failures[f.path] = f.reason
                self.log(f"skipped {f.path}: {f.reason}", "warning")

    def _gather_failures(self) -> None:
        """Under torchrun: the files the other ranks could not read, for the summary."""
        for part in self.world.gather(self.load_failures) if self.world.distributed else ():
            self._note_failures([LoadFailure(path, reason) for path, reason in part.items()])

    # -- running

    def stopping(self) -> bool:
        """Whether to stop now. Under torchrun the ranks agree: a stop asked of any one stops them all here."""
        if self.world.any(self.stop.is_set()):
            self.stop.set()
            return True
        return False

    def run(self) -> FitResult:
        s, t = self.state, self.project.train
        total_params = sum(p.numel() for p in s.model.parameters())
        trainable = sum(p.numel() for p in s.model.parameters() if p.requires_grad)
        self.emit(ev.FitStarted(
            epochs=t.epochs, steps_per_epoch=self.steps, train_size=len(self.data.train),
            val_size=len(self.data.val), classes=tuple(self.data.classes), device=str(self.device),
            trainable_params=trainable, total_params=total_params, feature_cache=self.cache is not None,
            run_dir=self.run_dir, world_size=self.world.size))
        start = self.clock()
        resumed_from = s.epoch if self.resume_from is not None else None
        self.last_checkpoint = self.resume_from or self.checkpoint(write=False)  # the seed makes it again
        stopped_early = self.patience_spent()
        train_images, train_seconds = 0, 0.0
        while not stopped_early and s.epoch < t.epochs and not self.stopping():
            epoch = s.epoch + 1
            out_of_memory = None
            try:
                tr = self.train_epoch(epoch)
                va = self.evaluate() if tr is not None else None
            except torch.OutOfMemoryError as exc:
                if self.micro <= 1 or self.world.distributed:
                    raise
                out_of_memory = str(exc).splitlines()[0] if str(exc) else "out of memory"
            if out_of_memory is not None:  # outside the except block: its traceback no longer holds tensors
                self.retry_smaller(epoch, out_of_memory)
                continue
            if tr is None or va is None:
                break
            self._gather_failures()
            if tr.seen == 0:
                example = next(iter(self.load_failures.items()), ("?", "?"))
                raise DataError(f"no training image could be read in epoch {epoch} (e.g. {example[0]}: "
                                f"{example[1]}); were the images moved or deleted? The run folder keeps the "
                                f"checkpoint after epoch {s.epoch}: resume once the images are back")
            self.val_seconds = va.seconds
            train_images += tr.seen
            train_seconds += tr.seconds
            s.epoch = epoch
            is_best = (va.accuracy, -va.mean_loss) > (s.best_val_accuracy, -s.best_val_loss)
            if is_best:
                s.best_val_accuracy, s.best_val_loss, s.best_epoch = va.accuracy, va.mean_loss, epoch
                s.epochs_without_improvement = 0
                s.best_state = {}  # the checkpoint below copies the model once; the best weights share that copy
            else:
                s.epochs_without_improvement += 1
            sec_per_epoch = tr.seconds + va.seconds
            e = ev.EpochEnded(
                epoch=epoch, epochs=t.epochs, train_loss=tr.mean_loss, train_accuracy=tr.accuracy,
                val_loss=va.mean_loss, val_accuracy=va.accuracy, lr=self.lr(), seconds=sec_per_epoch,
                images_per_second=tr.seen / tr.seconds if tr.seconds > 0 else 0.0,
                eta_seconds=sec_per_epoch * (t.epochs - epoch), best_val_accuracy=s.best_val_accuracy,
                is_best=is_best, train_seconds=tr.seconds, val_seconds=va.seconds)
            s.history.append(e)
            self.next_stage(epoch)
            self.last_checkpoint = self.checkpoint()
            if is_best:  # checkpoint tensors are never changed in place, so sharing them is safe
                s.best_state = {k: self.last_checkpoint.tensors[f"model/{k}"] for k in s.model.state_dict()}
            self.emit(e)
            stopped_early = self.patience_spent()
        stopped_by_user = self.stopping() and not stopped_early
        self.staging.end(s.epoch)
        check = self.staging.spans.total()
        if s.best_state is not None:
            s.model.load_state_dict(loadable(s.model, s.best_state))
        s.model.to(memory_format=torch.contiguous_format)  # computes as the saved model will once loaded
        best = s.best_val_accuracy if s.best_state is not None else math.nan
        final = s.history[-1].val_accuracy if s.history else math.nan
        seconds = self.clock() - start
        skipped = list(self.data.skipped) + sorted(self.load_failures.items())
        summary = fit_summary(
            self, best=best, final=final, check=check, seconds=seconds, skipped=skipped,
            stopped_early=stopped_early, stopped_by_user=stopped_by_user, resumed_from=resumed_from,
            images_per_second=train_images / train_seconds if train_seconds > 0 else 0.0)
        self.emit(ev.FitEnded(
            epochs_completed=s.epoch, best_val_accuracy=best, final_val_accuracy=final,
            stopped_early=stopped_early, stopped_by_user=stopped_by_user, seconds=seconds,
            frozen_verified=check.ok, run_dir=self.run_dir, skipped_files=len(skipped)))
        return FitResult(model=s.model, classes=list(self.data.classes), history=list(s.history),
                         summary=summary, skipped=skipped, stopped_by_user=stopped_by_user,
                         data=self.data)

    def patience_spent(self) -> bool:
        """Early stopping is due (also right after resuming a run that had got there)."""
        t, s = self.project.train, self.state
        if t.early_stop_patience and s.history and s.epochs_without_improvement >= t.early_stop_patience:
            self.log(f"early stop: no better validation accuracy for {t.early_stop_patience} epoch(s); "
                     f"keeping epoch {s.best_epoch}")
            return True
        return False

    def close(self) -> None:
        """Take the stop flag's hooks off the model, and drop the loaders so their worker processes (if any)
        shut down now."""
        if self.stop_checks is not None:
            self.stop_checks.remove()
            self.stop_checks = None
        self.train_loader = self.val_loader = None
        self.trained = None


def fit(project: Project, *, callbacks: Iterable[Callback] = (), stop: threading.Event | None = None,
        run_dir: str | None = None, feature_cache: bool | FeatureStore = True,
        checkpoints: st.CheckpointSink | None = None, resume_from: st.Checkpoint | None = None,
        world: World | None = None) -> FitResult:
    """Train `project` and return the best model by validation accuracy with its history and summary.

    Raises a `ThawError` (nothing trained) for an invalid project or unusable data. `stop` (a `StopFlag`
    or `threading.Event`) is checked after every batch and between the model's layers (hooks, removed before
    `fit` returns); once set, training ends and the best model so far is returned. Callbacks get every event
    of `engine.events` in order, on this thread.
    `feature_cache=False` never caches features (to compare, or to save memory); a `FeatureStore` keeps them
    for the next run of the same backbone (a transfer study's recipes).
    With `checkpoints` (a `CheckpointSink`), a checkpoint goes there after each epoch; `resume_from` (from `engine.runs.checkpoint.read`, for this same project) continues after its epoch.
    `world` (`engine.distributed.world.World`): this process's rank under torchrun, whose process group has
    been joined; every rank calls `fit` alike (only rank 0 with sinks and callbacks that write).
    """
    f = _Fit(project, callbacks, stop, str(run_dir or ""), feature_cache, checkpoints, resume_from, world)
    try:
        f.setup()
        return f.run()
    finally:
        f.close()
