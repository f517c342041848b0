"""Safe reading and writing of weight files: safetensors, or ``torch.load(weights_only=True)`` state dicts.

A file is only ever read as tensors, never as pickled code, and every failure names the file and says
what to do, because a person picked that file by hand.
"""

from __future__ import annotations

import os
import pickle
from collections import Counter, OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from engine.errors import WeightsError
from engine.io import weight_formats as fmt
from engine.io.atomic import atomic_path

# What a weights path usually ends with; a file is read by what its first bytes say it is, whatever its suffix.
SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin", ".tar")
KINDS_OF_FILE = "a weights file (safetensors or PyTorch: .safetensors, .pth, .pt, .ckpt, .bin, .tar)"


def load_state_dict(path: str | os.PathLike, mmap: bool = False,
                    notes: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Read the state dict a weights file holds onto the CPU; `WeightsError` on any trouble, naming the file.

    The format comes from the file's first bytes (`weight_formats.sniff`); a checkpoint that wraps the state
    dict (``state_dict``, ``model_state_dict``, ``model``, ...) and a ``module.`` prefix are unwrapped, each
    said in `notes`. `mmap` maps a PyTorch zip archive instead of reading it (its tensors are read when used).
    A torch file's ``_metadata`` (module versions, which MNASNet needs) is kept."""
    path = Path(path)
    kind = _kind(path)
    if kind == fmt.SAFETENSORS:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj: object = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path} is not a readable safetensors file (truncated or damaged?): {exc}") from None
    else:
        obj = _torch_load(path, mmap)
    try:
        state, found = fmt.unwrap(obj, path.name)
    except ValueError as exc:
        raise WeightsError(str(exc)) from None
    if notes is not None:
        notes += found
    # Module versions (MNASNet needs them) where the keys are the file's own; else `loadable` adds the model's.
    metadata = getattr(obj, "_metadata", None) if not found else None
    out = OrderedDict(state)
    if metadata is not None:
        out._metadata = metadata  # type: ignore[attr-defined]
    return out


def _kind(path: Path) -> str:
    """The file's format (`weight_formats`); `WeightsError` for a folder, a missing file or one Thaw cannot read."""
    if path.is_dir():
        raise WeightsError(f"{path} is a folder, not a weights file; choose the file inside it (a .safetensors, "
                           ".pth or .pt file)")
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        kind = fmt.sniff(path)
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if kind not in (fmt.SAFETENSORS, fmt.TORCH_ZIP, fmt.PICKLE):
        raise WeightsError(f"{path} is {kind}; Thaw reads state dicts saved as safetensors or with torch.save")
    return kind


def _torch_load(path: Path, mmap: bool = False) -> object:
    try:
        with torch.serialization.safe_globals(fmt.safe_globals(path)):
            if path.suffix.lower() == ".safetensors":  # torch.load would read it as safetensors, by its name
                with open(path, "rb") as f:
                    return torch.load(f, map_location="cpu", weights_only=True)
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
            f"safetensors) and pick that file. Detail: {_detail(exc)}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable PyTorch weights file (truncated or damaged?): {exc}") from None


def _detail(exc: Exception) -> str:
    """The line of a weights-only refusal that names what it met (torch's message starts with advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "Unsupported global" in line or "Can only" in line or "GLOBAL" in line]
    return (named or lines or ["(no detail)"])[0]


def loadable(model: nn.Module, state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """`state` with module versions (``_metadata``) attached, taken from `model` where the state lacks them:
    a safetensors file or a plain dict has none, and MNASNet refuses to load without its version."""
    if getattr(state, "_metadata", None) is not None:
        return state
    out = OrderedDict(state)
    out._metadata = getattr(model.state_dict(), "_metadata", None)  # type: ignore[attr-defined]
    return out


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
        problems.append(f"{len(bad_missing)} missing keys: {fmt.first_few(bad_missing)}")
    if bad_unexpected:
        problems.append(f"{len(bad_unexpected)} unexpected keys: {fmt.first_few(bad_unexpected)}")
    if bad_wrong:
        k = bad_wrong[0]
        problems.append(f"{len(bad_wrong)} tensors of another shape, e.g. {k}: the file has "
                        f"{tuple(given[k])}, the model needs {tuple(own[k])}")
    return problems, sorted(set(missing) | set(unexpected) | set(wrong))


def misfit_message(source: str, problems: list[str], own: Mapping[str, tuple[int, ...]],
                   given: Mapping[str, tuple[int, ...]], lookalike: str | None = None) -> str:
    """Why a file does not fit: how many of the model's tensors it has, the first problems, and the
    architecture whose tensors it does hold, when one is known (`lookalike`)."""
    matched = sum(1 for k, shape in own.items() if k in given and tuple(given[k]) == tuple(shape))
    hint = (f"These look like {lookalike} weights: set model.arch to {lookalike}" if lookalike
            else "Is it a state dict of another architecture or size?")
    return (f"{source} does not fit this architecture ({matched} of the model's {len(own)} tensors match; "
            f"{'; '.join(problems)}). {hint}")


def shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], source: str,
              tolerate: tuple[str, ...] = (), notes: list[str] | None = None) -> list[str]:
    """Copy `state` into `model`, checking every key and shape first (`fit_problems`); returns the keys it
    skipped. Anything that does not fit is a `WeightsError` naming `source` and the first offending keys.
    Tensors of another floating-point type (float16, bfloat16) are cast to the model's, said in `notes`."""
    own = model.state_dict()
    problems, skipped = fit_problems(shapes(own), shapes(state), tolerate)
    if problems:
        raise WeightsError(misfit_message(source, problems, shapes(own), shapes(state)))
    left_out = set(skipped)
    kept = OrderedDict((k, v) for k, v in state.items() if k not in left_out)
    kept._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]
    if notes is not None:
        casts = Counter((str(v.dtype), str(own[k].dtype)) for k, v in kept.items()
                        if v.is_floating_point() and v.dtype != own[k].dtype)
        notes += [f"{source}: cast {n} {a.replace('torch.', '')} tensors to {b.replace('torch.', '')}"
                  for (a, b), n in sorted(casts.items())]
    model.load_state_dict(loadable(model, kept), strict=False)
    return skipped


def read_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """The tensor shapes a weights file holds, by name, reading as little as the format allows: a safetensors
    file's header only; a PyTorch zip archive memory-mapped (tensors not read). Wrappers and prefixes are
    recognised as `load_state_dict` does; `WeightsError` as there."""
    path = Path(path)
    if _kind(path) == fmt.SAFETENSORS:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path} is not a readable safetensors file (truncated or damaged?): {exc}") from None
        return fmt.without_wrapper_prefixes(found, path.name, [])
    return shapes(load_state_dict(path, mmap=True))


def save_safetensors(state: Mapping[str, torch.Tensor], path: str | os.PathLike,
                     metadata: dict[str, str] | None = None) -> None:
    """Write a state dict as safetensors atomically (tensors made contiguous and unshared first)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
