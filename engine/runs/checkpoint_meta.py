"""Is a checkpoint's metadata what Thaw writes? Checked before a resume uses any of it.

The metadata is JSON in the safetensors header, so a person can edit it by hand. Anything missing, of the
wrong type or out of range (``epoch = 99`` for a 10-epoch run, ``-3``, a history of another length, a label
outside the classes) makes the checkpoint damaged (`CheckpointError`, exit 2), instead of a traceback later
or a resume that trains on from nonsense.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from engine import events as ev
from engine.errors import ProjectError
from engine.project import from_dict

_HISTORY_KEYS = {f.name for f in fields(ev.EpochEnded)}
_OPTIONAL_HISTORY_KEYS = {"train_seconds", "val_seconds"}
SPLITS = ("train", "val", "test")


def _count(value: Any, low: int = 0, high: int | None = None) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def meta_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with a checkpoint's metadata (None when it is as Thaw writes it)."""
    try:
        project = from_dict(meta.get("project"))
    except ProjectError as exc:
        return f"its project is not valid ({exc})"
    epochs = project.train.epochs
    epoch = meta.get("epoch")
    if not _count(epoch, 0, epochs):
        return f"epoch = {epoch!r}, not a number of completed epochs between 0 and the run's {epochs}"
    history = meta.get("history")
    if not isinstance(history, list) or len(history) != epoch:
        return f"its history does not list the {epoch} completed epoch(s)"
    for i, e in enumerate(history, start=1):
        if not isinstance(e, dict) or not set(e) <= _HISTORY_KEYS or _HISTORY_KEYS - set(e) - _OPTIONAL_HISTORY_KEYS \
                or e.get("epoch") != i or not all(_number(v) for k, v in e.items() if k != "is_best"):
            return f"its history entry {i} is not an epoch's figures"
    classes = meta.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        return "classes is not a list of class names"
    for key, ok in (("global_step", _count(meta.get("global_step"))),
                    ("best_epoch", _count(meta.get("best_epoch"), 0, epoch)),
                    ("epochs_without_improvement", _count(meta.get("epochs_without_improvement"), 0, epoch)),
                    ("micro_batch", _count(meta.get("micro_batch"), 1)),
                    ("best_val_accuracy", _number(meta.get("best_val_accuracy"))),
                    ("best_val_loss", _number(meta.get("best_val_loss", 0.0))),
                    ("best", meta.get("best") in ("current", "saved", None)),
                    ("load_failures", isinstance(meta.get("load_failures"), dict)),
                    ("optimizer", isinstance(meta.get("optimizer"), dict)),
                    ("scheduler", isinstance(meta.get("scheduler"), (dict, type(None)))),
                    ("scaler", isinstance(meta.get("scaler"), (dict, type(None)))),
                    ("rng", isinstance(meta.get("rng"), dict)),
                    ("split", _split_ok(meta.get("split"), len(classes)))):
        if not ok:
            return f"{key} is missing or not what a run writes" if key in meta else f"{key} is missing"
    return None


def _split_ok(split: Any, n_classes: int) -> bool:
    """The run's split (absent in checkpoints from before it was stored): (path, label) lists per part."""
    if split is None:
        return True
    return isinstance(split, dict) and set(split) == set(SPLITS) and all(
        isinstance(part, list) and all(isinstance(s, list) and len(s) == 2 and isinstance(s[0], str)
                                       and _count(s[1], 0, n_classes - 1) for s in part)
        for part in split.values())
