"""What a weights file is, told from its first bytes (never its suffix), and where its state dict sits inside.

People bring weights from many tools: a plain state dict, a safetensors file named ``.pth`` (or the reverse), a
DataParallel/DDP state dict (keys prefixed ``module.``), a PyTorch Lightning checkpoint (``state_dict`` with keys
prefixed by the LightningModule's attribute, e.g. ``model.``), a training checkpoint of the PyTorch tutorial
(``{"epoch", "model_state_dict", "optimizer_state_dict", "loss"}``), timm's and torchvision's reference-script
checkpoints (``{"model": ...}`` or ``{"state_dict": ...}`` beside an ``args`` namespace). Each is recognised here,
once, and what was recognised is said in words (`notes`), so the log, the window and the command line say the same.
Files are only ever read as tensors: safetensors, or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import struct
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Where training scripts keep the model's state dict, in the order they are tried.
WRAPPERS = ("model_state_dict", "state_dict", "model", "module", "net", "network", "model_ema", "state_dict_ema")
# Prefixes that wrappers of the model add to every key (DataParallel/DDP, torch.compile).
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_SHOW = 5
_LIGHTNING = ("lightning.", "lightning_fabric.", "pytorch_lightning.")

SAFETENSORS, TORCH_ZIP, PICKLE = "safetensors", "PyTorch zip archive", "PyTorch legacy file"
# Formats Thaw cannot read, by their magic bytes, named when a file is refused.
_FOREIGN = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras/TensorFlow weights)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"GGUF", "a GGUF file (llama.cpp)"),
    (b"\x7fELF", "a program, not weights"),
)


def sniff(path: str | Path) -> str:
    """`SAFETENSORS`, `TORCH_ZIP` or `PICKLE` for a file Thaw can read; otherwise what the file looks like, in
    words (e.g. "a NumPy .npz archive (JAX/Flax weights)"), for the message that refuses it."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "an empty file"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= size - 8 and head[8:9] == b"{":
            return SAFETENSORS
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return PICKLE
    for magic, what in _FOREIGN:
        if head.startswith(magic):
            return what
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml")):
        return "a web page (a download that failed or needed a login?)"
    if text.startswith((b"{", b"[")):
        return "a JSON file (a model's configuration, not its weights?)"
    return "a file of another format (neither safetensors nor PyTorch)"


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return "a ZIP archive that is truncated or damaged (an interrupted download?)"
    if any(n.endswith("data.pkl") for n in names):
        return TORCH_ZIP
    if names and all(n.endswith(".npy") for n in names):
        return "a NumPy .npz archive (JAX/Flax weights, e.g. Google's ViT); timm reads these, Thaw does not"
    return "a ZIP archive that is not a PyTorch file"


def safe_globals(path: str | Path) -> list[Any]:
    """What a weights-only load of `path` may build besides tensors and plain containers: the ``args``
    namespace timm's and torchvision's training scripts store beside the weights (plain attributes), and
    Lightning's ``AttributeDict`` hyper-parameters, read as a plain dict (its class is never imported)."""
    import torch

    allowed: list[Any] = [argparse.Namespace]
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 (a legacy or damaged file: the load itself says what is wrong)
        return allowed
    allowed += [(dict, name) for name in unsafe if name.startswith(_LIGHTNING) and name.endswith(".AttributeDict")]
    return allowed


def first_few(keys: Iterable[str]) -> str:
    """The first few of `keys` in sorted order, and how many more there are."""
    keys = sorted(map(str, keys))
    more = f" (and {len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def _is_state(obj: Any) -> bool:
    from torch import Tensor

    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, Tensor) for v in obj.values())


def unwrap(obj: Any, source: str) -> tuple[Mapping[str, Any], list[str]]:
    """The state dict inside a loaded object, and notes saying where it was found. `ValueError` (its text says
    what the object holds instead) when there is none."""
    notes: list[str] = []
    for _ in range(3):  # a wrapper inside a wrapper (a Lightning checkpoint of a DDP model, ...)
        if _is_state(obj) or not isinstance(obj, Mapping):
            break
        inner = next(((k, obj[k]) for k in WRAPPERS if isinstance(obj.get(k), Mapping) and obj[k]), None)
        if inner is None:
            break
        others = [k for k in obj if k != inner[0]]
        also = f"; not used: {first_few(others)}" if others else ""
        notes.append(f"{source}: read the state dict under {inner[0]!r}{also}")
        obj = inner[1]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{source} does not hold a state dict (a mapping of parameter names to tensors)")
    if not _is_state(obj):
        from torch import Tensor

        bad = [str(k) for k, v in obj.items() if not isinstance(v, Tensor)]
        raise ValueError(f"{source}: entries that are not tensors: {first_few(bad)}; keys found: "
                         f"{first_few(obj)}")
    return without_wrapper_prefixes({str(k): v for k, v in obj.items()}, source, notes), notes


def without_wrapper_prefixes(state: dict[str, Any], source: str, notes: list[str]) -> dict[str, Any]:
    """`state` (tensors or shapes, by name) without a prefix every key has from a wrapper of the model
    (DataParallel/DDP's ``module.``, torch.compile's ``_orig_mod.``); each removal said in `notes`."""
    for prefix in _WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
            notes.append(f"{source}: removed prefix {prefix!r} from {len(state)} keys")
    return state


def conform(found: Mapping[str, Any], own: Mapping[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    """`found` (a file's tensors or shapes, by name) renamed to the model's names (`own`): when more of its keys
    match after removing a prefix (Lightning's ``model.``, a wrapper's ``backbone.``), the prefix is removed and
    the keys outside it are left out; both said in the notes."""
    def score(prefix: str) -> int:
        return sum(1 for k in found if k.startswith(prefix) and k[len(prefix):] in own)

    candidates = {""}
    for k in found:
        parts = k.split(".")
        candidates.update(".".join(parts[:i]) + "." for i in (1, 2) if len(parts) > i)
    best = max(sorted(candidates, key=len), key=score)
    if not best or score(best) <= score(""):
        return dict(found), []
    inside = {k[len(best):]: v for k, v in found.items() if k.startswith(best)}
    outside = [k for k in found if not k.startswith(best)]
    notes = [f"{source}: removed prefix {best!r} from {len(inside)} keys"]
    if outside:
        notes.append(f"{source}: left out {len(outside)} keys outside {best!r} (not the model's): {first_few(outside)}")
    return inside, notes
