"""Training data: image folders and CSV lists, bad files found, stratified seeded splits, and the rules a
project's sources must meet (`path_problems`, `source_problems`), written once for the preflight and the run.

Every image is opened once while scanning (cheap: header + `verify`), so unreadable files are listed with a
reason before training instead of crashing it. Turning images into tensors is `engine.loading`'s.
"""

from __future__ import annotations

import csv
import os
import random
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from engine.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})



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


# ---------------------------------------------------------------- a project's sources


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


def path_problems(project: Any) -> list[tuple[str, str]]:
    """(key, why) for the data sources: chosen, and there (a folder, or an existing CSV list)."""
    if not project.data.train.strip():
        return [("data.train", "no training data chosen; choose an image folder or a CSV list")]
    found = []
    for key, what in (("data.train", "training"), ("data.val", "validation")):
        value = project.get(key)
        if not value.strip():
            continue
        p = project.resolve(value)
        if p.suffix.lower() == ".csv":
            if not p.is_file():
                found.append((key, f"CSV list {p} does not exist"))
        elif not p.is_dir():
            found.append((key, f"{p} is not a folder or .csv file; choose the {what} image folder (one sub-folder "
                               "per class)"))
    return found


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
