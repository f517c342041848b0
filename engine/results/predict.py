"""A run's trained model loaded back, and what it predicts for images: a labelled source (the run's own split,
another folder or CSV list) or loose images.

The model runs in eval mode under `torch.inference_mode`, a batch at a time, on images prepared exactly as the
run's validation images were (the architecture's resize, crop and normalisation at the run's input size); only
the top-k classes, their probabilities and the loss are kept per image (`Predictions`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from engine import project as proj
from engine.data import IMAGE_EXTENSIONS, Sample, check_image, scan
from engine.device import autocast_dtype, pick_device
from engine.errors import DataError, RunError
from engine.io.images import open_image
from engine.loading import ImageDataset, build_transforms, eval_geometry, make_loader
from engine.model.assemble import rebuilt
from engine.model.zoo import Preprocess, arch_info, effective_image_size
from engine.results.metrics import Predictions
from engine.results.saliency import saliency

TOP_K = 5
MODEL_FILE = "model.safetensors"


@dataclass
class TrainedModel:
    """A run's model, ready to predict; `model_hash` (sha256 of its file) says which model an evaluation
    belongs to."""

    run_dir: Path
    project: proj.Project  # the run's own project.thaw.toml (its paths absolute)
    classes: list[str]
    model: nn.Module       # eval mode, on `device`
    device: torch.device
    image_size: int
    transform: Any         # the evaluation transform
    view: Any              # its resize and crop alone: the picture the model sees, for overlays
    model_hash: str

    def dataset(self, samples: list[Sample]) -> ImageDataset:
        """Samples as the model sees them; decoded anew each time (no cache: memory stays flat)."""
        return ImageDataset(samples, self.transform, self.image_size, cache=False)


def same_view(dataset: ImageDataset, trained: TrainedModel) -> bool:
    """The dataset's images are what `trained` sees: the same size and the same (deterministic) transform."""
    return dataset.image_size == trained.image_size and repr(dataset.transform) == repr(trained.transform)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_run(run_dir: str | os.PathLike, device: str | None = None) -> TrainedModel:
    """The model a run saved, with its classes and preprocessing; `RunError` saying what is missing."""
    folder = Path(run_dir).expanduser().absolute()
    if not folder.is_dir():
        raise RunError(f"{folder} is not a folder; give a run folder (one that holds {MODEL_FILE})")
    model_file = folder / MODEL_FILE
    if not model_file.is_file():
        raise RunError(f"{folder} holds no {MODEL_FILE}: it is not a run folder, or its run is still going or "
                       "ended before saving a model. A finished or stopped run has one")
    for name in ("project.thaw.toml", "labels.json"):
        if not (folder / name).is_file():
            raise RunError(f"{folder} has {MODEL_FILE} but no {name}; it is not a complete run folder")
    project = proj.load(folder / "project.thaw.toml")
    try:
        classes = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {folder / 'labels.json'}: {exc}") from None
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        raise RunError(f"{folder / 'labels.json'} must list the class names (at least two strings)")
    try:
        state = load_file(str(model_file))
    except (OSError, SafetensorError) as exc:
        raise RunError(f"cannot read {model_file} (damaged?): {exc}") from None
    dev = pick_device(device or project.train.device)
    built = rebuilt(project, classes, state, dev)
    info = arch_info(project.model.arch)
    size = effective_image_size(info, project.data.image_size)[0]
    preprocess = run_preprocess(folder) or info.preprocess
    return TrainedModel(folder, project, classes, built.model, dev, size,
                        build_transforms(preprocess, size, "none", train=False),
                        eval_geometry(preprocess, size), file_hash(model_file))


def run_preprocess(folder: Path) -> Preprocess | None:
    """The preprocessing a run trained with, as its summary.json keeps it (None for a run that predates it)."""
    try:
        kept = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["preprocess"]
        return Preprocess(resize=int(kept["resize"]), crop=int(kept["crop"]), mean=tuple(map(float, kept["mean"])),
                          std=tuple(map(float, kept["std"])), interpolation=str(kept["interpolation"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def predict(trained: TrainedModel, samples: list[Sample], *, k: int = TOP_K, stop: threading.Event | None = None,
            on_batch: Callable[[int, int], None] | None = None,
            decoded: ImageDataset | None = None) -> tuple[Predictions, list[tuple[str, str]]]:
    """Predictions for `samples` (label -1: none) with the `k` likeliest classes each, and (path, reason) for
    each image that failed to load. `on_batch(done, total)` after each batch; a set `stop` ends early with the
    images done so far. `decoded`: these samples as a run's dataset already holds them, decoded by the same
    transform (a run's validation images, evaluated as it ends): the same tensors without decoding them again."""
    dataset = decoded if decoded is not None and same_view(decoded, trained) else trained.dataset(samples)
    batch_size = max(1, trained.project.train.batch_size)
    loader = make_loader(dataset, batch_size, shuffle=False, seed=0)
    k = max(1, min(k, len(trained.classes)))
    amp = autocast_dtype(trained.device, trained.project.train.amp)
    n = len(dataset)  # filled batch by batch: no array per batch left between the freed images (RSS stays flat)
    labels, tops = np.empty(n, np.int64), np.empty((n, k), np.int64)
    probs, losses = np.empty((n, k), np.float64), np.empty(n, np.float64)
    paths, failed = [], []
    start = done = 0
    trained.model.eval()
    with torch.inference_mode():
        for batch in loader:
            span = dataset.samples[start:start + batch_size]
            start += len(span)
            bad = {f.path for f in batch.failures}
            failed += [(f.path, f.reason) for f in batch.failures]
            if len(batch):
                x = batch.x.to(trained.device)
                with torch.autocast(trained.device.type, dtype=amp) if amp is not None else nullcontext():
                    logits = trained.model(x).float()
                y = batch.y.to(trained.device)
                p = logits.softmax(1)
                top_p, top_c = p.topk(k, dim=1)
                loss = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
                loss = torch.where(y >= 0, loss, torch.full_like(loss, float("nan")))
                paths += [s.path for s in span if s.path not in bad]
                end = done + len(batch)
                labels[done:end], tops[done:end] = batch.y.numpy(), top_c.cpu().numpy()
                probs[done:end], losses[done:end] = top_p.cpu().numpy(), loss.cpu().numpy()
                done = end
            if on_batch is not None:
                on_batch(start, n)
            if stop is not None and stop.is_set():
                break
    return Predictions(list(trained.classes), paths, labels[:done], tops[:done], probs[:done], losses[:done]), failed


def labelled_samples(trained: TrainedModel, source: str | os.PathLike) -> tuple[list[Sample], list[tuple[str, str]]]:
    """A folder (one sub-folder per class) or CSV list, labelled with the model's classes; its unusable files.
    A class the model does not know is a `DataError` naming it (its images could only be counted wrong)."""
    found = scan(source, min_classes=1)
    index = {name: i for i, name in enumerate(trained.classes)}
    unknown = [c for c in found.classes if c not in index]
    if unknown:
        raise DataError(f"{source} has classes the model does not know: {', '.join(map(repr, unknown))}; it "
                        f"knows {', '.join(map(repr, trained.classes))}")
    return [Sample(s.path, index[found.classes[s.label]]) for s in found.samples], found.skipped


def explain(trained: TrainedModel, path: str | os.PathLike, target: int) -> tuple[Image.Image, np.ndarray]:
    """The picture the model sees of the image at `path` (its resize and crop) and the Grad-CAM map of class
    `target` over it: (H, W) in [0, 1] (`engine.results.saliency.saliency`)."""
    image = open_image(path)
    x = trained.transform(image).unsqueeze(0).to(trained.device)
    heat = saliency(trained.model, x, target=target, arch=trained.project.model.arch)
    return trained.view(image), heat[0].float().cpu().numpy()


def image_files(arguments: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The images named: files, and the images anywhere under folders (sorted); (path, reason) for the
    unusable files found in folders. A named file that is not a usable image, or nothing found at all, is a
    `DataError`."""
    files, skipped = [], []
    for argument in arguments:
        path = Path(argument).expanduser()
        if path.is_dir():
            for p in sorted(q for q in path.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS):
                reason = check_image(p)
                (skipped.append((str(p), reason)) if reason else files.append(p))
        elif path.is_file():
            reason = check_image(path)
            if reason:
                raise DataError(f"{path} cannot be used: {reason}")
            files.append(path)
        else:
            raise DataError(f"{path} does not exist")
    if not files:
        raise DataError(f"no usable images in {', '.join(map(str, arguments))}; supported formats: "
                        + ", ".join(sorted(IMAGE_EXTENSIONS)))
    return files, skipped
