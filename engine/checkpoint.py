"""Per-epoch checkpoints of a training run, and reading them back to resume it exactly.

One file per run folder, ``checkpoint.safetensors``: every tensor (model, optimizer state, best weights, RNG
states) as safetensors, everything else (epoch, counters, history, scheduler, the project as run) as JSON in
the file's metadata. Safetensors rather than ``torch.save``: reading it cannot run code whatever the file
holds (no pickle at all), and one file means one rename commits a whole checkpoint, so a crash at any
moment leaves either the previous checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from engine import events as ev
from engine.errors import CheckpointError, ProjectError, WeightsError
from engine.files import atomic_path
from engine.weights_io import load_into

if TYPE_CHECKING:
    from engine.training import LoopState

FILENAME = "checkpoint.safetensors"
FORMAT = 1
_META_KEY = "thaw_checkpoint"
# Settings that may differ between a run and its resumption: they change where or how fast, not what trains.
RESUMABLE_CHANGES = frozenset({"name", "train.device", "train.amp", "train.out_dir"})


@dataclass
class Checkpoint:
    """A loop state after `epoch` completed epochs: `tensors` on the CPU, `meta` JSON-ready."""

    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])

    @property
    def history(self) -> list[ev.EpochEnded]:
        return [ev.EpochEnded(**e) for e in self.meta["history"]]


# ---------------------------------------------------------------- tensors <-> JSON


def _encode(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """`obj` as JSON-ready data; its tensors go into `tensors` under fresh keys and are referenced by name."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}{len(tensors)}"
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, prefix) for k, v in obj.items()}
        return {"__items__": [[_encode(k, tensors, prefix), _encode(v, tensors, prefix)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors, prefix) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors, prefix) for v in obj]
    if type(obj).__module__ == "numpy":  # numpy's RNG state: an array of words, or a numpy scalar
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__items__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__items__"]}
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__ndarray__" in obj:
        import numpy as np

        return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
    return {k: _decode(v, tensors) for k, v in obj.items()}


# ---------------------------------------------------------------- capture and restore


def _rng_state(loader_generator: torch.Generator | None) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if "numpy" in sys.modules:
        state["numpy"] = sys.modules["numpy"].random.get_state(legacy=False)
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def _set_rng_state(state: dict[str, Any], loader_generator: torch.Generator | None) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    if "loader" in state and loader_generator is not None:
        loader_generator.set_state(state["loader"])


def capture(state: LoopState, *, project: dict[str, Any], classes: list[str], micro_batch: int,
            load_failures: dict[str, str], loader_generator: torch.Generator | None = None) -> Checkpoint:
    """A CPU copy of everything the loop needs to carry on after `state.epoch` completed epochs.

    `project` is the project as run (`engine.project.to_dict`), kept to refuse resuming with other settings.
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, t in state.model.state_dict().items():
        tensors[f"model/{name}"] = t.detach().to("cpu", copy=True).contiguous()
    best_is_current = state.best_state is not None and state.best_epoch == state.epoch
    if state.best_state is not None and not best_is_current:
        for name, t in state.best_state.items():
            tensors[f"best/{name}"] = t.detach().to("cpu", copy=True).contiguous()
    meta = {
        "format": FORMAT,
        "epoch": state.epoch,
        "global_step": state.global_step,
        "history": [dataclasses.asdict(e) for e in state.history],
        "best_val_accuracy": state.best_val_accuracy,
        "best_val_loss": state.best_val_loss,
        "best_epoch": state.best_epoch,
        "best": "current" if best_is_current else ("saved" if state.best_state is not None else None),
        "epochs_without_improvement": state.epochs_without_improvement,
        "micro_batch": micro_batch,
        "load_failures": load_failures,
        "classes": list(classes),
        "project": project,
        "optimizer": _encode(state.optimizer.state_dict(), tensors, "optimizer/"),
        "scheduler": _encode(state.scheduler.state_dict(), tensors, "scheduler/") if state.scheduler else None,
        "scaler": _encode(state.scaler.state_dict(), tensors, "scaler/") if state.scaler else None,
        "rng": _encode(_rng_state(loader_generator), tensors, "rng/"),
    }
    return Checkpoint(meta, tensors)


def restore(ckpt: Checkpoint, state: LoopState, loader_generator: torch.Generator | None = None) -> None:
    """Put `ckpt` into a freshly set-up loop state (same project, same data); `CheckpointError` if it
    does not fit."""
    m, t = ckpt.meta, ckpt.tensors
    model_state = {k[len("model/"):]: v for k, v in t.items() if k.startswith("model/")}
    try:
        skipped = load_into(state.model, model_state, "the checkpoint")
        if skipped:
            raise WeightsError(f"the checkpoint lacks {len(skipped)} of the model's tensors, e.g. {skipped[0]}")
        # The optimizer would keep the checkpoint's own tensors as its state and update them in place; a copy
        # keeps the checkpoint intact for a second out-of-memory retry from it.
        state.optimizer.load_state_dict(_decode(m["optimizer"], {k: v.clone() for k, v in t.items()
                                                                 if k.startswith("optimizer/")}))
        if state.scheduler is not None and m["scheduler"] is not None:
            state.scheduler.load_state_dict(_decode(m["scheduler"], t))
        if state.scaler is not None and m["scaler"] is not None:
            state.scaler.load_state_dict(_decode(m["scaler"], t))
        _set_rng_state(_decode(m["rng"], t), loader_generator)
    except (WeightsError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint does not fit this run's model and optimizer: {exc}") from None
    state.epoch = int(m["epoch"])
    state.global_step = int(m["global_step"])
    state.history = ckpt.history
    state.best_val_accuracy = float(m["best_val_accuracy"])
    state.best_val_loss = float(m.get("best_val_loss", math.inf))  # absent in checkpoints from before the rule
    state.best_epoch = int(m["best_epoch"])
    state.epochs_without_improvement = int(m["epochs_without_improvement"])
    if m["best"] == "current":
        state.best_state = {k: v.clone() for k, v in model_state.items()}
    elif m["best"] == "saved":
        state.best_state = {k[len("best/"):]: v for k, v in t.items() if k.startswith("best/")}
    else:
        state.best_state = None


# ---------------------------------------------------------------- files


def path_in(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / FILENAME


def write(run_dir: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write atomically (temporary file, fsync, rename); stale temporary files of a killed write go first."""
    target = path_in(run_dir)
    for stale in target.parent.glob(f".{FILENAME}.*.tmp"):
        stale.unlink(missing_ok=True)
    from safetensors.torch import save_file

    meta = json.dumps(ckpt.meta, separators=(",", ":"))
    with atomic_path(target) as tmp:
        save_file(ckpt.tensors, str(tmp), metadata={_META_KEY: meta})
    return target


def _finished(run_dir: Path) -> str:
    """How the run in `run_dir` ended, from its summary.json, if it ended with nothing left to continue."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(summary, dict) or summary.get("stopped_by_user") is not False:
        return ""
    how = "stopped early" if summary.get("stopped_early") else "finished"
    return f"{how} after {summary.get('epochs_completed', '?')} epoch(s)"


def read(run_dir: str | os.PathLike) -> Checkpoint:
    """The checkpoint of a run folder; `CheckpointError` with what to do when it is missing or unusable.

    Only safetensors is read: a file that is anything else (a pickle, say) is refused without running it.
    """
    run_dir = Path(run_dir)
    path = path_in(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a run folder (no such folder)")
    if not path.is_file():
        finished = _finished(run_dir)
        if finished:
            raise CheckpointError(f"the run in {run_dir} {finished}: there is nothing to continue. Its model is "
                                  f"{run_dir / 'model.safetensors'}; to fine-tune it further, start a new run with "
                                  "model.weights set to that file (its layers are loaded, the head starts anew).")
        raise CheckpointError(f"{run_dir} has no {FILENAME}: the run stopped before its first checkpoint was "
                              "written, or the folder is not a Thaw run folder. Start the run again instead.")
    from safetensors import SafetensorError, safe_open

    damaged = (f"{path} is damaged or not a Thaw checkpoint (nothing in it was run); resume from another "
               "run folder or start the run again")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw = (f.metadata() or {}).get(_META_KEY)
            names = f.keys()  # a safe_open handle is not iterable
            tensors = {k: f.get_tensor(k) for k in names}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{damaged}: {exc}") from None
    try:
        meta = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{damaged}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{damaged}: no Thaw checkpoint data (format {FORMAT}) in it")
    missing = _missing_refs(meta, tensors)
    if missing:
        raise CheckpointError(f"{damaged}: tensors missing, e.g. {missing[0]}")
    return Checkpoint(meta, tensors)


def _missing_refs(obj: Any, tensors: dict[str, torch.Tensor]) -> list[str]:
    if isinstance(obj, dict):
        ref = obj.get("__tensor__")
        if isinstance(ref, str):
            return [] if ref in tensors else [ref]
        return [r for v in obj.values() for r in _missing_refs(v, tensors)]
    if isinstance(obj, list):
        return [r for v in obj for r in _missing_refs(v, tensors)]
    return []


# ---------------------------------------------------------------- checks before a run


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Settings (dotted keys) where `now` differs from the project a checkpoint was trained with, as
    "key = now (the run had: saved)", leaving out those a resumption may change."""
    a, b = _flat(saved), _flat(now)
    return [f"{k} = {b.get(k)!r} (the run had {a.get(k)!r})" for k in sorted(set(a) | set(b))
            if k not in RESUMABLE_CHANGES and a.get(k) != b.get(k)]


def estimated_bytes(model: nn.Module, optimizer_kind: str) -> int:
    """Disk space a run's outputs need: a checkpoint (model, optimizer state, a second copy for the best
    weights) and model.safetensors, written while the previous checkpoint still exists."""
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    optimizer_copies = 2 if optimizer_kind == "adamw" else 1
    return model_bytes * (2 * (2 + optimizer_copies) + 1)


def check_space(folder: str | os.PathLike, needed: int, key: str = "train.out_dir") -> None:
    """`ProjectError` before training when the disk holding `folder` (or its nearest existing parent) has
    less than `needed` bytes free."""
    existing = Path(folder)
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise ProjectError(key, f"only {free / 2**20:,.0f} MB free on the disk of {folder}; this run's "
                                f"checkpoints and model need about {needed / 2**20:,.0f} MB. Free some space "
                                "or choose another output folder")
