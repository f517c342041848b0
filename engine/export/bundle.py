"""A run's model exported as a bundle that predicts the same outside Thaw, and verified as it is written.

    model.onnx           ONNX (symbolic batch, weights inside, labels and preprocessing in its metadata)
    model.pt2            torch.export program (labels.json and preprocessing.json as extra files)
    model.safetensors    the run's own weights file, byte for byte
    labels.json, preprocessing.json, signature.json, README.md
    predict.py, requirements.txt, reference/   with ONNX: the standalone script and its self-test
    export.json          what was written and how each format compared with PyTorch

Every graph is loaded back and compared with the PyTorch model on real images from the run's data (its
evaluation's images; drawn noise when they are gone, said so) at batch 1 and 3 (`graph.compare`). A failed
comparison is an error and nothing is left behind. A format the exporter cannot handle is left out with the
operator named, and the rest is still written (model.safetensors always, then): `ExportResult.failed`.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.errors import ThawError
from engine.export import destination, graph, readme
from engine.export.preprocessing import describe
from engine.io.images import open_image
from engine.results import evaluation
from engine.results.predict import MODEL_FILE, TrainedModel, load_run

FORMATS = ("onnx", "pt2", "safetensors")
CHECK_IMAGES = 6        # images compared, in batches of 1 and of 3
REFERENCE_IMAGES = 4    # images stored for predict.py --selftest
SELFTEST_TOLERANCE = 1e-4  # on probabilities
SCRIPT = Path(__file__).with_name("predict_script.py")


class ExportStopped(Exception):
    """The person stopped the export; nothing was written."""


@dataclass
class ExportResult:
    path: Path                                   # the bundle folder, or the .zip
    written: list[str]                           # formats in the bundle
    checks: list[graph.Check]
    failed: dict[str, graph.ExportFailed] = field(default_factory=dict)   # format -> why it is not there
    report: dict[str, Any] = field(default_factory=dict)                  # export.json
    traced: bool = False                                                  # torch.export took the model

    def summary(self) -> str:
        """One paragraph for the terminal and the window."""
        lines = [f"{c.fmt}: verified against PyTorch on {c.images} images at batch {' and '.join(map(str, c.batches))}"
                 f", largest difference {c.max_abs_diff:.1e} (allowed: {c.allowed()}), same top class"
                 for c in sorted(self.checks, key=lambda c: FORMATS.index(c.fmt))]
        lines += [f"{fmt}: not exported: {exc}" for fmt, exc in self.failed.items()]
        if self.failed:
            works = [*self.written, *(["pt2"] if self.traced and "pt2" not in self.written else [])]
            lines.append(f"formats that work for this model: {', '.join(sorted(works, key=FORMATS.index))} "
                         f"(the bundle holds {', '.join(self.written)})")
        source = self.report.get("images_from", "")
        return "\n".join([*lines, *([f"images checked: {source}"] if source else [])])


def parse_formats(text: str | Iterable[str]) -> list[str]:
    """"onnx,pt2" -> ["onnx", "pt2"] in the order of FORMATS; `ThawError` for an unknown or missing one."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ThawError(f"unknown export format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    return [f for f in FORMATS if f in names]


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
               formats: Iterable[str] = FORMATS, *, zipped: bool = False,
               progress: Callable[[str], None] | None = None, stop: threading.Event | None = None) -> ExportResult:
    """Export the run's model to `out` (default: ``RUN_DIR/export``) and verify it; see the module.

    `ThawError` (nothing written) for a run folder that cannot be exported, a destination that may not be
    written, or ONNX asked without its packages. `graph.VerificationFailed` when an exported graph computes
    something else (nothing written). `ExportStopped` when `stop` is set (nothing written)."""
    formats = parse_formats(formats)
    if "onnx" in formats and graph.missing_packages():
        raise ThawError(f"ONNX export needs {', '.join(graph.missing_packages())}: {graph.INSTALL_HINT}")
    if progress is not None:
        progress("loading the run's model")
    trained = load_run(run_dir, device="cpu")
    return export_model(trained, out, formats, zipped=zipped, progress=progress, stop=stop)


def export_model(trained: TrainedModel, out: str | os.PathLike | None, formats: Iterable[str], *,
                 zipped: bool = False, progress: Callable[[str], None] | None = None,
                 stop: threading.Event | None = None) -> ExportResult:
    """`export_run` for a run's model already loaded (`engine.results.predict.load_run`)."""
    formats = parse_formats(formats)
    say = progress or (lambda _text: None)
    target = destination.check_destination(
        Path(out) if out is not None else destination.default_destination(trained.run_dir), zipped,
        _data_folders(trained))
    started = time.perf_counter()
    built = destination.staging(target)
    try:
        result = _build(trained, built, formats, say, stop or threading.Event())
        result.report["export_seconds"] = round(time.perf_counter() - started, 1)
        result.report["files"] = {p.relative_to(built).as_posix(): p.stat().st_size
                                  for p in sorted(built.rglob("*")) if p.is_file()}
        _write_json(built / destination.REPORT, result.report)
        _check_stop(stop)
        say("zipping the bundle" if zipped else "moving the bundle into place")
        destination.place(built, target, zipped)
    finally:
        shutil.rmtree(built, ignore_errors=True)
    result.path = target
    return result


def _build(trained: TrainedModel, folder: Path, formats: list[str], say: Callable[[str], None],
           stop: threading.Event) -> ExportResult:
    pre = describe(trained.transform)
    labels = list(trained.classes)
    x, images_from, paths = _check_images(trained)
    extra = {"labels.json": json.dumps(labels, ensure_ascii=False), "preprocessing.json": json.dumps(pre)}
    result = ExportResult(folder, [], [])
    wanted_graphs = [f for f in formats if f in ("onnx", "pt2")]
    program = ref = None
    if wanted_graphs:
        say("tracing the model (torch.export)")
        try:
            program = graph.export_program(trained.model, x[:2])
            result.traced = True
            say("computing PyTorch's answers for the check (float32, and float64 for its rounding)")
            ref = graph.reference(trained.model, x)
        except graph.ExportFailed as exc:
            for fmt in wanted_graphs:
                result.failed[fmt] = exc
    _check_stop(stop)
    opset = None
    if program is not None and "pt2" in formats:
        say("writing model.pt2 and loading it back")
        try:
            module = graph.save_pt2(program, folder / "model.pt2", extra)
        except graph.ExportFailed as exc:
            result.failed["pt2"] = exc
            (folder / "model.pt2").unlink(missing_ok=True)
        else:
            say("comparing model.pt2 with PyTorch at batch 1 and 3")
            result.checks.append(_verified(graph.compare(
                "pt2", lambda a: module(torch.from_numpy(a)).detach().numpy(), ref)))
            result.written.append("pt2")
        _check_stop(stop)
    if program is not None and "onnx" in formats:
        say("converting to ONNX")
        metadata = {"thaw.labels": extra["labels.json"], "thaw.preprocessing": extra["preprocessing.json"],
                    "thaw.arch": trained.project.model.arch}
        try:
            opset = graph.save_onnx(program, x[:2], folder / "model.onnx", metadata)
            run = graph.onnx_runner(folder / "model.onnx")
        except graph.ExportFailed as exc:
            result.failed["onnx"] = exc
            opset = None
            for leftover in folder.glob("model.onnx*"):
                leftover.unlink()
        else:
            say("comparing model.onnx in onnxruntime with PyTorch at batch 1 and 3")
            result.checks.append(_verified(graph.compare("onnx", run, ref)))
            result.written.append("onnx")
            say("storing reference images for predict.py --selftest")
            _write_selftest(trained, folder, paths, x)
        _check_stop(stop)
    if "safetensors" in formats or result.failed:
        shutil.copyfile(trained.run_dir / MODEL_FILE, folder / MODEL_FILE)
        result.written.append("safetensors")
    result.written.sort(key=FORMATS.index)
    _write_json(folder / "labels.json", labels)
    _write_json(folder / "preprocessing.json", pre)
    _write_json(folder / "signature.json", _signature(trained, pre, opset))
    result.report = _report(trained, result, images_from, opset)
    (folder / "README.md").write_text(readme.text(trained, result.written, pre, result.report), encoding="utf-8")
    return result


def _verified(check: graph.Check) -> graph.Check:
    if not check.passed:
        raise graph.VerificationFailed(
            f"{check.fmt} does not compute what the PyTorch model computes: largest difference "
            f"{check.max_abs_diff:.3g} ({check.max_rel_excess:.1f}x what is allowed: {check.allowed()})"
            f"{'' if check.same_top1 else ', and the top class differs'}; nothing was written")
    return check


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise ExportStopped("export stopped; nothing was written")


def _data_folders(trained: TrainedModel) -> list[Path]:
    """The run's image folders (a CSV list's own folder is not one: projects and runs often sit beside it)."""
    d = trained.project.data
    found = (Path(trained.project.resolve(v)).expanduser().absolute() for v in (d.train, d.val, d.test)
             if v and v.strip())
    return [p for p in found if p.is_dir()]


def _check_images(trained: TrainedModel) -> tuple[torch.Tensor, str, list[Path | None]]:
    """Up to CHECK_IMAGES of the run's evaluated images, taking the classes in turn; drawn noise when none of
    them can be read any more. The batch, where they came from, and their paths (None for drawn ones)."""
    try:
        predictions = evaluation.read(trained.run_dir).predictions
        by_class: dict[int, list[str]] = {}
        for path, label in zip(predictions.paths, predictions.labels, strict=True):
            by_class.setdefault(int(label), []).append(path)
        turns = [p for group in zip(*by_class.values(), strict=False) for p in group] if by_class else []
        turns += [p for group in by_class.values() for p in group if p not in turns]
    except ThawError:
        turns = []
    chosen: list[tuple[Path, torch.Tensor]] = []
    for path in turns:
        try:
            chosen.append((Path(path), trained.transform(open_image(path))))
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
            continue
        if len(chosen) == CHECK_IMAGES:
            break
    if len(chosen) >= 2:
        return (torch.stack([t for _, t in chosen]),
                f"{len(chosen)} images of the run's evaluation ({trained.run_dir / evaluation.PREDICTIONS_FILE})",
                [p for p, _ in chosen])
    rng = np.random.default_rng(0)
    side = trained.image_size + trained.image_size // 4
    drawn = [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(CHECK_IMAGES)]
    return (torch.stack([trained.transform(im) for im in drawn]),
            f"{CHECK_IMAGES} images of random noise: the run's evaluated images could not be read", [None] * len(drawn))


def _write_selftest(trained: TrainedModel, folder: Path, paths: list[Path | None], x: torch.Tensor) -> None:
    """reference/: a few of the checked images (PNG, as decoded, at most twice the resize) with the
    probabilities PyTorch gives for them; and the script that repeats it."""
    ref = folder / "reference"
    ref.mkdir()
    limit = 2 * max(trained.image_size, 1)
    items = []
    for i, path in enumerate(paths[:REFERENCE_IMAGES]):
        if path is not None:
            image = open_image(path)
            image.thumbnail((limit, limit))
        else:
            image = Image.fromarray(np.clip(x[i].permute(1, 2, 0).numpy() * 64 + 128, 0, 255).astype(np.uint8))
        name = f"{i:02d}.png"
        image.save(ref / name)
        tensor = trained.transform(open_image(ref / name))[None]
        with torch.inference_mode():
            p = trained.model(tensor).double().softmax(1)[0]
        items.append({"file": f"reference/{name}", "probabilities": [float(v) for v in p]})
    _write_json(ref / "expected.json", {"tolerance": SELFTEST_TOLERANCE, "images": items,
                                        "computed_by": f"Thaw (PyTorch {torch.__version__})"})
    shutil.copyfile(SCRIPT, folder / "predict.py")
    (folder / "requirements.txt").write_text("onnxruntime>=1.17\nnumpy>=1.24\npillow>=10.0\n", encoding="utf-8")


def _signature(trained: TrainedModel, pre: dict, opset: int | None) -> dict:
    h, w = pre["input_size"]
    return {"inputs": {graph.INPUT: {"shape": [graph.BATCH_DIM, 3, h, w], "dtype": "float32",
                                     "meaning": "images prepared as preprocessing.json says, NCHW"}},
            "outputs": {graph.OUTPUT: {"shape": [graph.BATCH_DIM, len(trained.classes)], "dtype": "float32",
                                       "meaning": "logits, one per class in labels.json order; softmax over "
                                                  "axis 1 gives probabilities"}},
            "batch": {"symbolic": True, "min": 1, "max": graph.MAX_BATCH},
            "onnx_opset": opset, "arch": trained.project.model.arch, "classes": len(trained.classes)}


def _report(trained: TrainedModel, result: ExportResult, images_from: str, opset: int | None) -> dict:
    import platform

    versions = {"torch": torch.__version__, "python": platform.python_version()}
    if "onnx" in result.written:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return {destination.MARK: 1, "run": str(trained.run_dir), "arch": trained.project.model.arch,
            "model_sha256": trained.model_hash, "classes": list(trained.classes), "formats": result.written,
            "verification": {c.fmt: c.to_dict() for c in result.checks},
            "failed": {fmt: {"operator": exc.operator, "message": str(exc)} for fmt, exc in result.failed.items()},
            "images_from": images_from, "onnx_opset": opset, "versions": versions,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
