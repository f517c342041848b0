"""Training data: image folders and CSV lists, stratified seeded splits, transforms, bad files skipped.

Every image is opened once while scanning (cheap: header + `verify`), so unreadable files are listed with a
reason before training instead of crashing it. A file that scanned fine but fails to decode later is
skipped by the loader and reported through the batch (see `collate`).
"""

from __future__ import annotations

import csv
import os
import random
import signal
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode, v2

from engine.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Sample:
    path: str
    label: int


@dataclass
class Scan:
    classes: list[str]
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def counts(self) -> dict[str, int]:
        """Images per class name, in class order."""
        c = Counter(s.label for s in self.samples)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}


# ---------------------------------------------------------------- scanning


def check_image(path: Path) -> str | None:
    """Why this file cannot be used as an image (None when it can). Reads the header and verifies the data."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                limit = Image.MAX_IMAGE_PIXELS
                if limit is not None and w * h > limit:
                    return f"too large ({w}x{h} pixels; limit {limit})"
                im.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return f"too large (decompression bomb guard: {exc})"
    except UnidentifiedImageError:
        return "not an image (cannot identify the format)"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return f"unreadable or truncated image ({exc})"
    return None


def _class_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))


def _scan_folder(root: Path) -> Scan:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        loose = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        hint = " (the images lie directly in it)" if loose else ""
        raise DataError(f"{root} has no class sub-folders{hint}; put the images of each class in its own "
                        "sub-folder, e.g. train/cat/*.jpg, train/dog/*.jpg")
    classes = [d.name for d in class_dirs]
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    for label, d in enumerate(class_dirs):
        for p in _class_files(d):
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append((str(p), f"not an image file (extension {p.suffix or 'none'!r})"))
                continue
            reason = check_image(p)
            if reason:
                skipped.append((str(p), reason))
            else:
                samples.append(Sample(str(p), label))
    return Scan(classes, samples, skipped)


def _scan_csv(csv_path: Path) -> Scan:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read CSV list {csv_path}: {exc}") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    pairs: list[tuple[int, str, str]] = []
    for i, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"{csv_path}, row {i}: expected 'path,label', got {','.join(row)!r}")
        pairs.append((i, row[0].strip(), row[1].strip()))
    classes = sorted({label for _, _, label in pairs})
    index = {name: i for i, name in enumerate(classes)}
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    for _, rel, label in pairs:
        p = Path(os.path.expanduser(rel))
        p = p if p.is_absolute() else csv_path.parent / p
        if not p.is_file():
            skipped.append((str(p), "listed in the CSV but not found"))
            continue
        reason = check_image(p)
        if reason:
            skipped.append((str(p), reason))
        else:
            samples.append(Sample(str(p), index[label]))
    return Scan(classes, samples, skipped)


def scan(source: str | os.PathLike) -> Scan:
    """List the usable images of an image folder (one sub-folder per class) or a CSV list (`path,label`).

    Raises `DataError` when the source cannot be trained on: no images at all, a class without usable
    images, or fewer than two classes. Unusable files are returned in `skipped` with a reason.
    """
    source = Path(source)
    if source.suffix.lower() == ".csv":
        if not source.is_file():
            raise DataError(f"CSV list {source} does not exist")
        result = _scan_csv(source)
    elif source.is_dir():
        result = _scan_folder(source)
    else:
        raise DataError(f"{source} is neither an image folder nor a .csv list")
    if not result.samples:
        extra = f" ({len(result.skipped)} files skipped as unusable)" if result.skipped else ""
        raise DataError(f"no usable images found in {source}{extra}; supported formats: "
                        + ", ".join(sorted(IMAGE_EXTENSIONS)))
    empty = [name for name, n in result.counts().items() if n == 0]
    if empty:
        raise DataError(f"class folder(s) without usable images in {source}: {', '.join(empty)}; "
                        "add images or remove the folder")
    if len(result.classes) < 2:
        raise DataError(f"only one class ({result.classes[0]!r}) in {source}; a classifier needs at least "
                        "two classes, one sub-folder each")
    return result


# ---------------------------------------------------------------- splitting


def val_count(n: int, val_fraction: float) -> int:
    """How many of a class's `n` images go to validation: round(n * val_fraction), at least 1."""
    return max(1, round(n * val_fraction))


def split_problem(counts: dict[str, int], val_fraction: float) -> str | None:
    """Why a split of classes with these image counts leaves one of them no training image (None if none)."""
    for name, n in counts.items():
        n_val = val_count(n, val_fraction)
        if n - n_val < 1:
            return (f"class {name!r} has only {n} usable image(s); a train/validation split with "
                    f"val_fraction={val_fraction} needs at least {n_val + 1}. Add images, or give a separate "
                    "validation folder (data.val)")
    return None


def split(samples: list[Sample], val_fraction: float, seed: int,
          classes: list[str] | None = None) -> tuple[list[Sample], list[Sample]]:
    """Stratified, seeded split: each class gives `val_count` images to validation.

    Raises `DataError` for a class too small to give at least one image to each side.
    """
    by_label: dict[int, list[Sample]] = {}
    for s in samples:
        by_label.setdefault(s.label, []).append(s)
    problem = split_problem({classes[label] if classes else str(label): len(by_label[label])
                             for label in sorted(by_label)}, val_fraction)
    if problem:
        raise DataError(problem)
    rng = random.Random(seed)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda s: s.path)
        n_val = val_count(len(group), val_fraction)
        rng.shuffle(group)
        val.extend(group[:n_val])
        train.extend(group[n_val:])
    return train, val


# ---------------------------------------------------------------- transforms


def build_transforms(preprocess: Any, image_size: int, augment: str, train: bool) -> v2.Compose:
    """Resize/crop/normalise as the weights expect, scaled to `image_size`; augmentation only when training.

    `preprocess` has `resize`, `crop`, `mean`, `std`, `interpolation` (see `engine.model.zoo.Preprocess`); the
    resize-to-crop ratio of the weights is kept at the project's image size.
    """
    mean = tuple(getattr(preprocess, "mean", IMAGENET_MEAN))
    std = tuple(getattr(preprocess, "std", IMAGENET_STD))
    crop0 = getattr(preprocess, "crop", image_size) or image_size
    resize0 = getattr(preprocess, "resize", crop0) or crop0
    resize = max(image_size, round(image_size * resize0 / crop0))
    interp = InterpolationMode(str(getattr(preprocess, "interpolation", "bilinear")).lower())
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    if not train or augment == "none":
        return v2.Compose([v2.Resize(resize, interpolation=interp, antialias=True),
                           v2.CenterCrop(image_size), *tail])
    if augment == "light":
        return v2.Compose([v2.RandomResizedCrop(image_size, scale=(0.6, 1.0), interpolation=interp,
                                                antialias=True),
                           v2.RandomHorizontalFlip(), *tail])
    if augment == "strong":
        return v2.Compose([v2.RandomResizedCrop(image_size, scale=(0.3, 1.0), interpolation=interp,
                                                antialias=True),
                           v2.RandomHorizontalFlip(),
                           v2.RandomApply([v2.RandomRotation(15)], p=0.5),
                           v2.ColorJitter(0.3, 0.3, 0.3, 0.05),
                           *tail,
                           v2.RandomErasing(p=0.25)])
    raise ValueError(f"unknown augment preset {augment!r}")


# ---------------------------------------------------------------- datasets and loaders


@dataclass(frozen=True)
class LoadFailure:
    """A sample that scanned fine but failed to decode when loaded; the loader drops it and reports it."""

    path: str
    reason: str


CACHE_BYTES = 256 * 2**20  # decoded images a dataset with a fixed transform keeps in memory, at most


class ImageDataset(Dataset):
    """Samples -> (image tensor, label). Images are converted to RGB (grayscale and palette included).

    With `cache` (a transform without randomness) each image is decoded once and kept, up to `CACHE_BYTES`,
    so later epochs skip PNG/JPEG decoding. A kept image is used only while its file's size and mtime are
    unchanged: a file deleted or replaced mid-run is read (or fails) as without the cache.
    """

    def __init__(self, samples: list[Sample], transform: Any, image_size: int, cache: bool = False) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.image_size = image_size
        self.cache = cache
        self._kept: dict[int, tuple[tuple[int, int], torch.Tensor]] = {}
        self._kept_bytes = 0

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | LoadFailure:
        s = self.samples[i]
        try:
            if not self.cache:
                return self._decode(s.path), s.label
            st = os.stat(s.path)
            stamp = (st.st_size, st.st_mtime_ns)
            kept = self._kept.get(i)
            if kept is not None and kept[0] == stamp:
                return kept[1], s.label
            x = self._decode(s.path)
            if kept is None and self._kept_bytes + x.nbytes <= CACHE_BYTES:
                self._kept[i] = (stamp, x)
                self._kept_bytes += x.nbytes
            elif kept is not None:
                self._kept[i] = (stamp, x)
            return x, s.label
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            return LoadFailure(s.path, f"failed to decode while loading ({exc})")

    def _decode(self, path: str) -> torch.Tensor:
        with Image.open(path) as im:
            img = im.convert("RGB")
        return self.transform(img)


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor
    failures: list[LoadFailure]

    def __len__(self) -> int:
        return len(self.y)

    def pin_memory(self) -> Batch:
        return Batch(self.x.pin_memory(), self.y.pin_memory(), self.failures)


def collate(items: list[Any]) -> Batch:
    """Stack the good items; carry the load failures along so the training loop can report them."""
    good = [it for it in items if not isinstance(it, LoadFailure)]
    failures = [it for it in items if isinstance(it, LoadFailure)]
    if not good:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), failures)
    x = torch.stack([it[0] for it in good])
    y = torch.as_tensor([int(it[1]) for it in good], dtype=torch.long)
    return Batch(x, y, failures)


@dataclass
class DataBundle:
    classes: list[str]
    train: ImageDataset
    val: ImageDataset
    skipped: list[tuple[str, str]]

    def class_counts(self) -> list[int]:
        """Training images per class, in class order."""
        c = Counter(self.train.labels)
        return [c.get(i, 0) for i in range(len(self.classes))]


@dataclass
class Sources:
    """What scanning a project's training and validation sources found. Never raised: a source that cannot
    be used has its reason in `train_error` / `val_error`, so the window can show it beside the field."""

    train: Scan | None = None
    val: Scan | None = None
    train_error: str | None = None
    val_error: str | None = None

    @property
    def classes(self) -> list[str]:
        """The training data's class names ([] when it cannot be used)."""
        return list(self.train.classes) if self.train is not None else []


def _try_scan(source: Path) -> tuple[Scan | None, str | None]:
    try:
        return scan(source), None
    except DataError as exc:
        return None, str(exc)
    except OSError as exc:  # e.g. a folder that cannot be listed
        return None, f"cannot read {source}: {exc}"


def scan_sources(project: Any) -> Sources:
    """Scan the project's training source and, if one is given, its validation source."""
    d = project.data
    train, train_error = _try_scan(project.resolve(d.train)) if d.train.strip() else (None, None)
    val, val_error = _try_scan(project.resolve(d.val)) if d.val.strip() else (None, None)
    return Sources(train, val, train_error, val_error)


def source_problems(project: Any, sources: Sources) -> list[tuple[str, str]]:
    """(key, why) for each reason the scanned sources cannot be trained on as the project says: a source
    that failed to scan, validation classes the training data lacks, a split that leaves a class empty."""
    d = project.data
    found = []
    if sources.train_error:
        found.append(("data.train", sources.train_error))
    if sources.val_error:
        found.append(("data.val", sources.val_error))
    if sources.train is not None and sources.val is not None:
        unknown = sorted(set(sources.val.classes) - set(sources.train.classes))
        if unknown:
            found.append(("data.val", f"validation classes not in the training data: {', '.join(unknown)}; "
                                      "the validation folder must use the training folder's class names"))
    if sources.train is not None and not d.val.strip():
        problem = split_problem(sources.train.counts(), d.val_fraction)
        if problem:
            found.append(("data.val_fraction", problem))
    return found


def prepare_data(project: Any, preprocess: Any, sources: Sources | None = None) -> DataBundle:
    """Split and wrap the project's data (scanned now unless `sources` has it); `DataError` for anything
    that cannot be trained on."""
    d = project.data
    if not d.train.strip():
        raise DataError("no training data chosen; choose an image folder or a CSV list")
    sources = sources if sources is not None else scan_sources(project)
    problems = source_problems(project, sources)
    if problems:
        raise DataError(problems[0][1])
    train_scan, val_scan = sources.train, sources.val
    skipped = list(train_scan.skipped)
    if val_scan is not None:
        skipped += val_scan.skipped
        index = {name: i for i, name in enumerate(train_scan.classes)}
        train_samples = train_scan.samples
        val_samples = [Sample(s.path, index[val_scan.classes[s.label]]) for s in val_scan.samples]
    else:
        train_samples, val_samples = split(train_scan.samples, d.val_fraction, project.train.seed,
                                           train_scan.classes)
    size = d.image_size
    return DataBundle(
        classes=train_scan.classes,
        train=ImageDataset(train_samples, build_transforms(preprocess, size, d.augment, train=True), size,
                           cache=d.augment == "none"),
        val=ImageDataset(val_samples, build_transforms(preprocess, size, d.augment, train=False), size, cache=True),
        skipped=skipped,
    )


def choose_workers(n_images: int, image_size: int, cpus: int | None = None) -> int:
    """Loader processes for this much work: none for small or tiny-image sets (in-process is as fast as
    starting workers), else up to 8, leaving a core for the training thread."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    if cpus <= 2 or image_size <= 64 or n_images * image_size * image_size < 500 * 224 * 224:
        return 0
    return min(8, cpus - 1)


def _ignore_sigint(_worker_id: int) -> None:
    """Loader workers leave Ctrl-C to the main process, which stops cleanly and saves."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, *,
                num_workers: int | None = None, pin_memory: bool = False) -> DataLoader:
    """A DataLoader that is safe inside a Qt process: in-process, or spawn/forkserver workers (never fork).

    Shuffling uses its own seeded generator, so the order does not depend on anything else in the process.
    """
    if num_workers is None:
        num_workers = choose_workers(len(dataset), getattr(dataset, "image_size", 0))
    generator = torch.Generator()
    generator.manual_seed(seed)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs = {"multiprocessing_context": "forkserver" if sys.platform.startswith("linux") else "spawn",
                  "persistent_workers": True, "worker_init_fn": _ignore_sigint, "prefetch_factor": 4}
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      collate_fn=collate if isinstance(dataset, ImageDataset) else None,
                      generator=generator, pin_memory=pin_memory, drop_last=False, **kwargs)
