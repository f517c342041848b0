"""Training events: frozen dataclasses of plain numbers and strings, safe to hand to another thread.

They are listed once, in `EVENTS`, each with its `NAME`. Whatever takes them (the run folder's recorder, the
command line's progress lines, the window's worker, a test's recorder) subclasses `Handler` and defines an
``on_<NAME>`` method for each event it cares about, instead of a chain of ``isinstance`` tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FitStarted:
    NAME: ClassVar[str] = "fit_started"
    epochs: int
    steps_per_epoch: int
    train_size: int
    val_size: int
    classes: tuple[str, ...]
    device: str
    trainable_params: int
    total_params: int
    feature_cache: bool
    run_dir: str
    world_size: int = 1  # processes training together (torchrun); 1 in a single process


@dataclass(frozen=True)
class BatchEnded:
    NAME: ClassVar[str] = "batch_ended"
    epoch: int  # 1-based
    step: int  # 1-based, within the epoch
    steps_per_epoch: int
    global_step: int  # 1-based, over the whole run
    loss: float
    accuracy: float
    lr: float  # learning rate of the head's group
    images_per_second: float
    eta_seconds: float


@dataclass(frozen=True)
class EpochEnded:
    NAME: ClassVar[str] = "epoch_ended"
    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    images_per_second: float
    eta_seconds: float
    best_val_accuracy: float
    is_best: bool
    train_seconds: float = 0.0  # the epoch's `seconds`, split into its training and validation parts
    val_seconds: float = 0.0


@dataclass(frozen=True)
class LayerActivity:
    """Which layers are learning, measured at one optimizer step (`engine.train.activity`): per block, input to
    head, the gradient norm and the update ratio ||dW|| / ||W|| (about 1e-3 is healthy; 0 for a frozen block)."""

    NAME: ClassVar[str] = "activity"
    global_step: int  # 1-based, the step measured
    epoch: int  # 1-based
    blocks: tuple[str, ...]
    trained: tuple[bool, ...]  # whether anything in the block trains now
    grad_norms: tuple[float, ...]
    update_ratios: tuple[float, ...]
    every: int  # steps between measurements now
    changed_frozen: tuple[str, ...] = ()  # blocks where a tensor that does not train changed: a freeze bug


@dataclass(frozen=True)
class LogMessage:
    NAME: ClassVar[str] = "log"
    text: str
    level: str = "info"  # "info" | "warning" | "error"


@dataclass(frozen=True)
class FitEnded:
    NAME: ClassVar[str] = "fit_ended"
    epochs_completed: int
    best_val_accuracy: float
    final_val_accuracy: float
    stopped_early: bool
    stopped_by_user: bool
    seconds: float
    frozen_verified: bool
    run_dir: str
    skipped_files: int = 0  # unusable images, at scan time and while loading (each listed in summary.json)


EVENTS = (FitStarted, BatchEnded, LayerActivity, EpochEnded, LogMessage, FitEnded)  # in the order a run sends them


class Handler:
    """Takes engine events (it is the loop's callback): ``handler(event)`` calls ``self.on_<event.NAME>(event)``
    where the subclass defines it, else `on_other` (which ignores it unless overridden)."""

    def __call__(self, event: Any) -> None:
        getattr(self, f"on_{event.NAME}", self.on_other)(event)

    def on_other(self, event: Any) -> None:
        """An event without a method of its own."""
