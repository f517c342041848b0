"""Safe reading and writing of weight files: safetensors, or ``torch.load(weights_only=True)`` state dicts.

A file is only ever read as tensors, never as pickled code, and every failure names the file and says
what to do, because a person picked that file by hand.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from engine.errors import WeightsError
from engine.io.atomic import atomic_path

SUFFIXES = (".safetensors", ".pth", ".pt")
KINDS_OF_FILE = f"a {', '.join(SUFFIXES[:-1])} or {SUFFIXES[-1]} file"  # how messages name a weights file
_SHOW = 5  # how many offending keys a message lists


def load_state_dict(path: str | os.PathLike, mmap: bool = False) -> dict[str, torch.Tensor]:
    """Read a state dict from a .safetensors or .pth/.pt file onto the CPU; `WeightsError` on any trouble.
    `mmap` maps a .pth/.pt zip archive instead of reading it (its tensors are read when used)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise WeightsError(f"{path}: weights must be {KINDS_OF_FILE}")
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path} is not a readable safetensors file (truncated or damaged?): {exc}") from None
    else:
        state = _torch_load(path, mmap)
    return _as_state_dict(state, path)


def _torch_load(path: Path, mmap: bool = False) -> object:
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # a legacy (non-zip) file
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path} holds more than tensors (a pickled full model or custom objects), which Thaw refuses to "
            "load because unpickling can run code. Save `model.state_dict()` instead (torch.save or "
            f"safetensors) and pick that file. Detail: {str(exc).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable PyTorch weights file (truncated or damaged?): {exc}") from None


def _as_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Accept a plain state dict, or a checkpoint that wraps one under 'state_dict' or 'model'."""
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping) and inner:
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path} does not hold a state dict (a mapping of parameter names to tensors)")
    not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise WeightsError(f"{path}: entries that are not tensors: {', '.join(map(str, not_tensors[:_SHOW]))}")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _first(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    more = f" (and {len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def fit_problems(own: Mapping[str, tuple[int, ...]], given: Mapping[str, tuple[int, ...]],
                 tolerate: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """Whether tensors of these shapes (`given`, by name) fit a model whose state dict has `own`'s shapes.

    Returns (problems, skipped): what does not fit, in words (empty when it all fits), and the keys that
    would be left out. Keys under a prefix in `tolerate` (the classifier that is about to be replaced) may be
    missing, unexpected or of another shape: they are skipped, not problems.
    """
    def tolerated(k: str) -> bool:
        return any(k == p or k.startswith(p + ".") for p in tolerate)

    # BatchNorm counters are absent from checkpoints older than PyTorch 0.4; BatchNorm fills them in itself.
    missing = [k for k in own if k not in given and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in given if k not in own]
    wrong = [k for k in own if k in given and tuple(own[k]) != tuple(given[k])]
    bad_missing = [k for k in missing if not tolerated(k)]
    bad_unexpected = [k for k in unexpected if not tolerated(k)]
    bad_wrong = [k for k in wrong if not tolerated(k)]
    problems = []
    if bad_missing:
        problems.append(f"{len(bad_missing)} missing keys: {_first(bad_missing)}")
    if bad_unexpected:
        problems.append(f"{len(bad_unexpected)} unexpected keys: {_first(bad_unexpected)}")
    if bad_wrong:
        k = bad_wrong[0]
        problems.append(f"{len(bad_wrong)} tensors of another shape, e.g. {k}: the file has "
                        f"{tuple(given[k])}, the model needs {tuple(own[k])}")
    return problems, sorted(set(missing) | set(unexpected) | set(wrong))


def misfit_message(source: str, problems: list[str]) -> str:
    return (f"{source} does not fit this architecture ({'; '.join(problems)}). "
            "Is it a state dict of another architecture or size?")


def shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], source: str,
              tolerate: tuple[str, ...] = ()) -> list[str]:
    """Copy `state` into `model`, checking every key and shape first (`fit_problems`); returns the keys it
    skipped. Anything that does not fit is a `WeightsError` naming `source` and the first offending keys."""
    own = model.state_dict()
    problems, skipped = fit_problems(shapes(own), shapes(state), tolerate)
    if problems:
        raise WeightsError(misfit_message(source, problems))
    left_out = set(skipped)
    model.load_state_dict({k: v for k, v in state.items() if k not in left_out}, strict=False)
    return skipped


def read_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """The tensor shapes a weights file holds, by name, reading as little as the format allows: a safetensors
    file's header only; a .pth/.pt zip archive memory-mapped (tensors not read). `WeightsError` as for
    `load_state_dict`."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path} is not a readable safetensors file (truncated or damaged?): {exc}") from None
    return shapes(load_state_dict(path, mmap=True))


def save_safetensors(state: Mapping[str, torch.Tensor], path: str | os.PathLike,
                     metadata: dict[str, str] | None = None) -> None:
    """Write a state dict as safetensors atomically (tensors made contiguous and unshared first)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
