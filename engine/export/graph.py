"""A trained model as portable graphs, and the check that each computes what the PyTorch model computes.

One `torch.export` program serves both formats: saved as `.pt2` (PyTorch only; labels and preprocessing as
extra files) and translated to ONNX by torch's dynamo exporter (opset 20; every weight inside the one file up
to ONNX's 2 GB limit; the batch dimension symbolic; labels and preprocessing in the metadata properties).
TorchScript is not offered: torch 2.14 deprecates `torch.jit.script/trace/save/load`.

`compare` runs the exported graph on the images of a `reference` (PyTorch's logits, at batch 1 and at batch 3)
and asks for `rtol=1e-3, atol=1e-4` on the logits, widened to twice PyTorch's own float32 error where that is
larger, and the same top-1 class everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

RTOL, ATOL = 1e-3, 1e-4
NOISE_FACTOR = 2.0  # an exported graph may be this many times as far from float64 as PyTorch's float32 is
NOISE_CAP = 1e-3    # ... but that allowance is at most this share of the largest logit (at least 1)
BATCHES = (1, 3)
INPUT, OUTPUT = "input", "logits"
BATCH_DIM = "batch"
MAX_BATCH = 4096
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
INSTALL_HINT = 'pip install "thaw[export]" (or: pip install onnx onnxscript onnxruntime)'
_SINGLE_FILE_LIMIT = 2 * 10**9  # protobuf's 2 GB: bigger models keep their weights in model.onnx.data


class ExportFailed(Exception):
    """The exporter could not translate the model; `operator` names what it could not handle, if known."""

    def __init__(self, fmt: str, message: str, operator: str | None = None) -> None:
        self.fmt = fmt
        self.operator = operator
        super().__init__(message)

    def __reduce__(self):  # pickled whole: an export in a process of its own sends it back (engine/export/own_process.py)
        return type(self), (self.fmt, str(self), self.operator)


class VerificationFailed(Exception):
    """An exported graph computes something other than the PyTorch model."""


@dataclass
class Check:
    """How closely one format agreed with PyTorch."""

    fmt: str
    images: int
    batches: tuple[int, ...]
    max_abs_diff: float
    max_rel_excess: float   # the largest |a - b| / allowed (see `compare`): at most 1 passes
    same_top1: bool
    noise: float            # PyTorch's own float32 error on these images (against float64)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.max_rel_excess <= 1.0 and self.same_top1

    def to_dict(self) -> dict:
        return {"verified": self.passed, "images": self.images, "batches": list(self.batches),
                "max_abs_diff": self.max_abs_diff, "rtol": RTOL, "atol": ATOL,
                "pytorch_float32_error": self.noise, "noise_factor": NOISE_FACTOR, "same_top1": self.same_top1,
                "seconds": round(self.seconds, 2)}

    def allowed(self) -> str:
        widened = f", or {NOISE_FACTOR:g}x PyTorch's own float32 error {self.noise:.1e}" if self.noise else ""
        return f"rtol {RTOL:g}, atol {ATOL:g}{widened}"


@dataclass
class Reference:
    """What the PyTorch model computes for the check images, a batch of each size at a time, and how far its own
    float32 logits are from float64 ones: an exported graph may show that much rounding too."""

    parts: list[torch.Tensor]
    logits: list[np.ndarray]
    noise: float
    batches: tuple[int, ...]


def missing_packages() -> list[str]:
    """The packages ONNX export needs that this Python lacks (the `export` extra)."""
    from importlib.util import find_spec

    return [name for name in ONNX_PACKAGES if find_spec(name) is None]


def operator_in(exc: BaseException) -> str | None:
    """The operator an exporter error names (e.g. ``aten::_upsample_bicubic2d_aa``), if it names one."""
    text = "\n".join(str(e) for e in _chain(exc))
    for pattern in (r"OpOverload\(op='([\w.]+)'", r"target=torch\.ops\.([\w.]+?)(?:\.default)?\]",
                    r"\b(aten::\w+(?:\.\w+)?)", r"\b(aten\.\w+(?:\.\w+)?)"):
        found = re.search(pattern, text)
        if found:
            return found.group(1).replace(".", "::", 1) if "::" not in found.group(1) else found.group(1)
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def export_program(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """`torch.export` of the model in eval mode with a symbolic batch (the example has at least 2 images, so no
    batch of 1 is baked in); `ExportFailed` naming the operator when it cannot be traced."""
    model.eval()
    batch = torch.export.Dim(BATCH_DIM, min=1, max=MAX_BATCH)
    try:
        return torch.export.export(model, (example,), dynamic_shapes=({0: batch},), strict=False)
    except Exception as exc:  # torch.export raises many kinds; each means "this model cannot be traced"
        op = operator_in(exc)
        raise ExportFailed("pt2", f"torch.export cannot trace this model{f' (operator {op})' if op else ''}: "
                                  f"{_first_line(exc)}", op) from exc


def save_pt2(program: torch.export.ExportedProgram, path: Path, extra: dict[str, str]) -> nn.Module:
    """The program saved as `.pt2` (with `extra` files) and loaded back as a module; `ExportFailed` when it
    cannot be saved or read back."""
    try:
        torch.export.save(program, path, extra_files=extra)
        return load_pt2(path)[0]
    except Exception as exc:  # serialisation errors have no common base
        op = operator_in(exc)
        raise ExportFailed("pt2", f"the .pt2 program cannot be saved and read back{f' (operator {op})' if op else ''}"
                                  f": {_first_line(exc)}", op) from exc


def load_pt2(path: Path, names: tuple[str, ...] = ()) -> tuple[nn.Module, dict[str, str]]:
    """The program saved at `path` as a module, and the extra files named."""
    extra = dict.fromkeys(names, "")
    module = torch.export.load(path, extra_files=extra).module()
    return module, extra


def save_onnx(program: torch.export.ExportedProgram, example: torch.Tensor, path: Path,
              metadata: dict[str, str]) -> int:
    """The program as ONNX at `path`, metadata in its properties; the opset written. `ExportFailed` naming the
    operator the translation lacks."""
    try:
        onnx_program = torch.onnx.export(program, (example,), input_names=[INPUT], output_names=[OUTPUT],
                                         dynamo=True, verbose=False)
    except Exception as exc:  # the translation's errors have no common base besides Exception
        op = operator_in(exc)
        raise ExportFailed("onnx", f"the ONNX exporter cannot translate this model"
                                   f"{f': no ONNX function for operator {op}' if op else ''} ({_first_line(exc)})",
                           op) from exc
    model = onnx_program.model
    for value in (*model.graph.inputs, *model.graph.outputs):  # "batch" rather than the tracer's "s77"
        if value.shape is not None:
            value.shape = type(value.shape)([BATCH_DIM, *value.shape[1:]])
    model.metadata_props.update(metadata)
    onnx_program.save(path, external_data=_weight_bytes(program) >= _SINGLE_FILE_LIMIT)
    return max(o for d, o in model.opset_imports.items() if d in ("", "ai.onnx"))


def _weight_bytes(program: torch.export.ExportedProgram) -> int:
    return sum(t.numel() * t.element_size() for t in program.state_dict.values())


def onnx_runner(path: Path, threads: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """A function that runs the ONNX file in onnxruntime on the CPU (`threads` 0: onnxruntime's choice);
    `ExportFailed` when onnxruntime cannot load it (an operator it lacks, say)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors have no public base class
        op = operator_in(exc)
        raise ExportFailed("onnx", f"onnxruntime cannot load the exported model{f' (operator {op})' if op else ''}: "
                                   f"{_first_line(exc)}", op) from exc
    return lambda x: session.run([OUTPUT], {INPUT: x})[0]


def reference(model: nn.Module, x: torch.Tensor, batches: tuple[int, ...] = BATCHES) -> Reference:
    """The model's float32 logits for `x` in batches of each size, and its float32 error against the same model
    in float64 (converted in place and back: float32 values convert to float64 and back exactly), at most
    `NOISE_CAP` of the largest logit: rounding, never a model whose answers change. A model that cannot run
    in float64 gets no such allowance (noise 0)."""
    model.eval()
    parts = [x[start:start + size] for size in batches for start in range(0, len(x), size)]
    with torch.inference_mode():
        logits = [model(part).float().numpy() for part in parts]
    try:
        model.double()
        with torch.inference_mode():
            exact = [model(part.double()).numpy() for part in parts]
        noise = max(float(np.abs(a - b).max()) for a, b in zip(logits, exact, strict=True))
    except (RuntimeError, TypeError):  # an operator without a float64 kernel
        noise = 0.0
    finally:
        model.float()
    scale = max(1.0, max(float(np.abs(a).max()) for a in logits))
    noise = min(noise, NOISE_CAP * scale) if np.isfinite(noise) else 0.0  # rounding, not a model that changes
    return Reference(parts, logits, noise, tuple(batches))


def compare(fmt: str, run: Callable[[np.ndarray], np.ndarray], ref: Reference) -> Check:
    """`run` (the exported graph on numpy arrays) against PyTorch's logits in `ref`, batch by batch. A logit
    passes within ``atol + rtol |pytorch|`` (`ATOL`, `RTOL`), or within `NOISE_FACTOR` times PyTorch's own
    float32 error on these images, whichever is larger: a deep network's float32 logits are that far from
    the exact ones in PyTorch too (resnet101 with lively random weights at 64 px: 7.9e-4), and an exported graph adds its own
    rounding, not a mistake. The top-1 class must be the same everywhere."""
    import time

    started = time.perf_counter()
    worst_abs = worst_excess = 0.0
    same = True
    for part, want in zip(ref.parts, ref.logits, strict=True):
        got = np.asarray(run(part.numpy()), dtype=np.float32)
        if got.shape != want.shape:
            raise VerificationFailed(f"{fmt} gave logits of shape {got.shape} for a batch of {len(part)}; "
                                     f"PyTorch gives {want.shape}")
        diff = np.nan_to_num(np.abs(got.astype(np.float64) - want), nan=np.inf)  # a NaN never passes
        allowed = np.maximum(ATOL + RTOL * np.abs(want), NOISE_FACTOR * ref.noise)
        worst_abs = max(worst_abs, float(diff.max()))
        worst_excess = max(worst_excess, float((diff / allowed).max()))
        same = same and bool((got.argmax(1) == want.argmax(1)).all())
    images = sum(len(p) for p in ref.parts) // len(ref.batches)
    return Check(fmt, images, ref.batches, worst_abs, worst_excess, same, ref.noise, time.perf_counter() - started)
