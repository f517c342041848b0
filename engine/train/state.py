"""Everything the training loop changes, in one object, and in-memory checkpoints of it.

`LoopState` holds the model, optimizer, scheduler, scaler, counters, history and best weights. `capture`
copies it to the CPU as a `Checkpoint`: tensors by name, everything else JSON-ready (so the run folder can
write it as one safetensors file, `engine.runs.checkpoint`), and `restore` puts one back exactly. The loop
keeps the last one in memory too, to run an epoch again after running out of memory.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from engine import events as ev
from engine.errors import CheckpointError, WeightsError
from engine.io.weights import load_into

FORMAT = 1


@dataclass
class LoopState:
    """What the loop changes while it runs; what a per-epoch checkpoint needs to hold."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    epoch: int = 0  # epochs completed
    global_step: int = 0
    history: list[ev.EpochEnded] = field(default_factory=list)
    best_val_accuracy: float = -1.0
    best_val_loss: float = math.inf  # breaks ties in accuracy: a small validation set saturates early
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    epochs_without_improvement: int = 0



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
            load_failures: dict[str, str], loader_generator: torch.Generator | None = None,
            split: dict[str, list[list[Any]]] | None = None) -> Checkpoint:
    """A CPU copy of everything the loop needs to carry on after `state.epoch` completed epochs.

    `project` is the project as run (`engine.project.to_dict`), kept to refuse resuming with other settings;
    `split` the images of each part (`engine.train.resumed_data.split_record`), kept so a resume keeps them.
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
    if split is not None:
        meta["split"] = split
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



class CheckpointSink(Protocol):
    """Where the loop sends its per-epoch checkpoints (a run folder: `engine.runs.checkpoint.CheckpointFile`)."""

    def reserve(self, model: nn.Module, optimizer_kind: str) -> None:
        """Before the first epoch: raise a `ThawError` if the checkpoints will not fit."""

    def write(self, ckpt: Checkpoint) -> None:
        """Store `ckpt`, replacing the previous one."""
