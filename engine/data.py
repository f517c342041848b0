"""Training data: image folders and CSV lists (`engine.datalist`), bad files found, stratified seeded splits
(validation and test). The rules a project's sources must meet are `engine.sources`'. Thaw's own folders (runs,
caches) in an image folder are not classes.

Every image is opened once while scanning (cheap: header + `verify`), so unreadable files are listed with a
reason before training instead of crashing it. Turning images into tensors is `engine.loading`'s.
"""

from __future__ import annotations

import math
import os
import random
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from engine.datalist import read_list
from engine.errors import DataError
from engine.io.ownership import is_thaw_folder

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})



@dataclass
class Sample:
    path: str
    label: int


@dataclass
class Scan:
    """A source's usable images. `classes` are the classes that have at least one (labels are 0..C-1 over
    them); a class folder or CSV label without any usable image is left out of them and named in
    `empty_classes` (a class with no images cannot be learned), its unusable files still in `skipped`."""

    classes: list[str]
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    empty_classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how a CSV list was read (`engine.datalist`)

    def counts(self) -> dict[str, int]:
        """Images per class name, in class order."""
        c = Counter(s.label for s in self.samples)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}


# ---------------------------------------------------------------- scanning


_CHECKED: dict[str, tuple[tuple[int, int, int | None], str | None]] = {}  # path -> (stamp, reason)
CHECKED_MAX = 200_000  # files whose answer is remembered, at most (~50 MB)


def check_image(path: Path) -> str | None:
    """Why this file cannot be used as an image (None when it can). Reads the header and verifies the data.

    The answer is remembered while the file's size and modification time (and PIL's pixel limit) stay the same:
    the window scans a folder when it is chosen and a run scans it again as it starts, which then reads only each
    file's stat (verifying the demo's 896 images held the window's interpreter ~0.5 s at every run's start)."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"unreadable or truncated image ({exc})"
    stamp = (st.st_size, st.st_mtime_ns, Image.MAX_IMAGE_PIXELS)
    known = _CHECKED.get(str(path))
    if known is not None and known[0] == stamp:
        return known[1]
    reason = _check_image(path, st.st_size)
    if len(_CHECKED) >= CHECKED_MAX:
        _CHECKED.clear()
    _CHECKED[str(path)] = (stamp, reason)
    return reason


def _check_image(path: Path, size: int) -> str | None:
    try:
        if size == 0:
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
    class_dirs = sorted(p for p in root.iterdir()
                        if p.is_dir() and not p.name.startswith(".") and not is_thaw_folder(p))
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
    listing = read_list(csv_path, IMAGE_EXTENSIONS)
    classes = sorted({label for _, label in listing.entries})
    index = {name: i for i, name in enumerate(classes)}
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    for p, label in listing.entries:
        if not p.is_file():
            skipped.append((str(p), "listed in the CSV but not found"))
            continue
        reason = check_image(p)
        if reason:
            skipped.append((str(p), reason))
        else:
            samples.append(Sample(str(p), index[label]))
    return Scan(classes, samples, skipped, notes=listing.notes)


def _without(result: Scan, empty: list[str]) -> Scan:
    """`result` with the classes in `empty` (which have no samples) left out and the labels renumbered."""
    kept = [name for name in result.classes if name not in empty]
    index = {name: i for i, name in enumerate(kept)}
    samples = [Sample(s.path, index[result.classes[s.label]]) for s in result.samples]
    return Scan(kept, samples, result.skipped, sorted(set(result.empty_classes) | set(empty)), result.notes)


def quoted(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def scan(source: str | os.PathLike, min_classes: int = 2) -> Scan:
    """List the usable images of an image folder (one sub-folder per class) or a CSV list (`path,label`).

    A class without usable images is left out of the result's `classes` and named in its `empty_classes`
    (see `source_warnings`). Raises `DataError` when the source cannot be used: no images at all, or fewer
    than `min_classes` classes with images (two to train on; data only evaluated may have one). Unusable files
    are returned in `skipped` with a reason.
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
        result = _without(result, empty)
    if len(result.classes) < min_classes:  # 1 for data that is only evaluated
        each = "one label each" if source.suffix.lower() == ".csv" else "one sub-folder each"
        if empty:
            raise DataError(f"only one class with usable images ({result.classes[0]!r}) in {source}: "
                            f"{quoted(empty)} has none, and a class with no usable images cannot be learned; "
                            f"a classifier needs at least two classes with images, {each}")
        raise DataError(f"only one class ({result.classes[0]!r}) in {source}; a classifier needs at least "
                        f"two classes, {each}")
    return result


# ---------------------------------------------------------------- splitting
#
# The split order, per class in label order: the class's images sorted by path, shuffled by one
# `random.Random(seed)` shared by all classes; the first `share_count(n, val_fraction)` go to validation, the
# next `share_count(n, test_fraction)` to test, the rest train. The shuffle does not depend on the shares, so
# validation is the same with or without a test share (and with none, the split is the one Thaw always made:
# old runs repeat and resume bit-identically); the test images come out of what would otherwise train.


@dataclass
class Split:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]


def share_count(n: int, fraction: float) -> int:
    """How many of a class's `n` images a share holds out: round(n * fraction), at least 1; none for 0."""
    return max(1, round(n * fraction)) if fraction > 0 else 0


def split_shares(project: Any) -> tuple[float, float]:
    """The validation and test shares the project splits off its training source (0 where a separate
    source, data.val or data.test, is given instead)."""
    d = project.data
    return (0.0 if d.val.strip() else d.val_fraction, 0.0 if d.test.strip() else d.test_fraction)


def shares_problem(val_fraction: float, test_fraction: float) -> str | None:
    """Why two shares split off together leave nothing to train on (None if they do not), known without a scan."""
    total = val_fraction + test_fraction
    if val_fraction and test_fraction and (total > 1 or math.isclose(total, 1)):
        return (f"data.val_fraction ({val_fraction}) and data.test_fraction ({test_fraction}) add up to "
                f"{total:g}: nothing would be left for training. Lower data.test_fraction (or data.val_fraction) "
                "so that together they stay below 1, or give a separate test folder (data.test)")
    return None


def split_problem(counts: dict[str, int], val_fraction: float,
                  test_fraction: float = 0.0) -> tuple[str, str] | None:
    """(key, why) when splitting these shares off classes with these image counts leaves one of them no
    training image (None if it leaves every class some). A class too small for validation alone is
    data.val_fraction's problem, as it always was; one the test share empties is data.test_fraction's."""
    problem = shares_problem(val_fraction, test_fraction)
    if problem:
        return "data.test_fraction", problem
    for name, n in counts.items():
        n_val, n_test = share_count(n, val_fraction), share_count(n, test_fraction)
        if n - n_val < 1:
            return "data.val_fraction", (
                f"class {name!r} has only {n} usable image(s); a train/validation split with "
                f"val_fraction={val_fraction} needs at least {n_val + 1}. Add images, or give a separate "
                "validation folder (data.val)")
        if n - n_val - n_test < 1:
            held = f"{n_val} for validation and {n_test} for test" if n_val else f"{n_test} for test"
            return "data.test_fraction", (
                f"class {name!r} has only {n} usable image(s); holding out {held} (test_fraction={test_fraction}) "
                f"needs at least {n_val + n_test + 1}. Add images, set data.test_fraction to 0 (no test split), "
                "or give a separate test folder (data.test)")
    return None


def split(samples: list[Sample], val_fraction: float, seed: int, classes: list[str] | None = None,
          test_fraction: float = 0.0) -> Split:
    """Stratified, seeded split in the order above; a share of 0 holds nothing out, and with no share at all
    the samples train in their order. Raises `DataError` for a class the shares leave no training image."""
    if not val_fraction and not test_fraction:
        return Split(list(samples), [], [])
    by_label: dict[int, list[Sample]] = {}
    for s in samples:
        by_label.setdefault(s.label, []).append(s)
    problem = split_problem({classes[label] if classes else str(label): len(by_label[label])
                             for label in sorted(by_label)}, val_fraction, test_fraction)
    if problem:
        raise DataError(problem[1])
    rng = random.Random(seed)
    out = Split([], [], [])
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda s: s.path)
        n_val, n_test = share_count(len(group), val_fraction), share_count(len(group), test_fraction)
        rng.shuffle(group)
        out.val.extend(group[:n_val])
        out.test.extend(group[n_val:n_val + n_test])
        out.train.extend(group[n_val + n_test:])
    return out
