"""A run's checkpoint file, and reading it back to resume the run exactly.

One file per run folder, ``checkpoint.safetensors``: every tensor of a `engine.train.state.Checkpoint` (model,
optimizer state, best weights, RNG states) as safetensors, everything else (epoch, counters, history,
scheduler, the project as run) as JSON in the file's metadata. Safetensors rather than ``torch.save``: reading
it cannot run code whatever the file holds (no pickle at all), and one file means one rename commits a whole
checkpoint, so a crash at any moment leaves either the previous checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import CheckpointError
from engine.io.atomic import atomic_path
from engine.io.space import check_space, run_bytes
from engine.project import Project, to_dict
from engine.runs.checkpoint_meta import meta_problem
from engine.train.state import FORMAT, Checkpoint
from engine.wording import count

FILENAME = "checkpoint.safetensors"
_META_KEY = "thaw_checkpoint"
# Settings that may differ between a run and its resumption: they change where or how fast, not what trains.
RESUMABLE_CHANGES = frozenset({"name", "train.device", "train.amp", "train.out_dir", "train.activity_every",
                               "train.activity_budget"})


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


class CheckpointFile:
    """The loop's checkpoint sink for a run folder: checks the disk has room, then writes each checkpoint."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)

    def reserve(self, model: nn.Module, optimizer_kind: str) -> None:
        check_space(self.run_dir, estimated_bytes(model, optimizer_kind))  # preflight estimated it; now exactly

    def write(self, ckpt: Checkpoint) -> None:
        write(self.run_dir, ckpt)


def _finished(run_dir: Path) -> str:
    """How the run in `run_dir` ended, from its summary.json, if it ended with nothing left to continue."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(summary, dict) or summary.get("stopped_by_user") is not False:
        return ""
    how = "stopped early" if summary.get("stopped_early") else "finished"
    done = summary.get("epochs_completed")
    return f"{how} after {count(done, 'epoch') if isinstance(done, int) else '? epochs'}"


def read(run_dir: str | os.PathLike, tensors: bool = True) -> Checkpoint:
    """The checkpoint of a run folder; `CheckpointError` with what to do when it is missing or unusable.
    `tensors=False` reads only its header (the epochs so far, for the window to show): no tensor is loaded.

    Only safetensors is read: a file that is anything else (a pickle, say) is refused without running it.
    """
    want_tensors = tensors
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
            tensors = {k: f.get_tensor(k) for k in names} if want_tensors else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{damaged}: {exc}") from None
    try:
        meta = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{damaged}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{damaged}: no Thaw checkpoint data (format {FORMAT}) in it")
    problem = meta_problem(meta)
    if problem:
        raise CheckpointError(f"{damaged}: {problem}")
    missing = _missing_refs(meta, tensors) if want_tensors else []
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
    "key = now (the run had: saved)", leaving out those a resumption may change. A key the saved project
    lacks (added to Thaw after the run, e.g. data.test) had its default, which did what the run did."""
    a, b = {**_flat(to_dict(Project())), **_flat(saved)}, _flat(now)
    return [f"{k} = {b.get(k)!r} (the run had {a.get(k)!r})" for k in sorted(set(a) | set(b))
            if k not in RESUMABLE_CHANGES and a.get(k) != b.get(k)]


def estimated_bytes(model: nn.Module, optimizer_kind: str) -> int:
    """Disk space a run of `model` needs (`engine.io.space.run_bytes`)."""
    return run_bytes(sum(t.numel() * t.element_size() for t in model.state_dict().values()), optimizer_kind)
