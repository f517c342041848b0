"""Training events: frozen dataclasses of plain numbers and strings, safe to hand to another thread."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FitStarted:
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


@dataclass(frozen=True)
class BatchEnded:
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
class LogMessage:
    text: str
    level: str = "info"  # "info" | "warning" | "error"


@dataclass(frozen=True)
class FitEnded:
    epochs_completed: int
    best_val_accuracy: float
    final_val_accuracy: float
    stopped_early: bool
    stopped_by_user: bool
    seconds: float
    frozen_verified: bool
    run_dir: str
    skipped_files: int = 0  # unusable images, at scan time and while loading (each listed in summary.json)
