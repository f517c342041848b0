"""Training data: image folders and CSV lists (`engine.datalist`), bad files found, stratified seeded splits
(validation and test), and the rules a project's sources must meet (`path_problems`, `share_problems`,
`source_problems`, `output_problem`, and `source_warnings` for what a run leaves out), written once for the
preflight and the run. Thaw's own folders (runs, caches) in an image folder are not classes.

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
from engine.io.ownership import inside, is_thaw_folder

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


def _names(names: list[str]) -> str:
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
                            f"{_names(empty)} has none, and a class with no usable images cannot be learned; "
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


# ---------------------------------------------------------------- a project's sources


@dataclass
class Sources:
    """What scanning a project's training, validation and test sources found. Never raised: a source that
    cannot be used has its reason in `train_error` / `val_error` / `test_error`, so the window can show it
    beside the field."""

    train: Scan | None = None
    val: Scan | None = None
    train_error: str | None = None
    val_error: str | None = None
    test: Scan | None = None
    test_error: str | None = None

    @property
    def classes(self) -> list[str]:
        """The training data's class names ([] when it cannot be used); its empty classes left out."""
        return list(self.train.classes) if self.train is not None else []

    def held_out(self) -> list[tuple[str, Scan | None, str | None]]:
        """(key, scan, error) of the validation source and of the test source."""
        return [("data.val", self.val, self.val_error), ("data.test", self.test, self.test_error)]

    def val_samples(self) -> list[Sample]:
        """The validation source's samples labelled as the training classes are (see `labelled`)."""
        return self.labelled(self.val)

    def test_samples(self) -> list[Sample]:
        """The test source's samples labelled as the training classes are (see `labelled`)."""
        return self.labelled(self.test)

    def labelled(self, held_out: Scan | None) -> list[Sample]:
        """A held-out source's samples labelled as the training classes are (0..C-1 over `classes`).
        Images of a class that is empty in the training data are left out: it is not learned, so it
        cannot be validated or tested. Call it only where `source_problems` found nothing (every class of
        the source is then a training class, or one empty there)."""
        if self.train is None or held_out is None:
            return []
        index = {name: i for i, name in enumerate(self.train.classes)}
        return [Sample(s.path, index[held_out.classes[s.label]]) for s in held_out.samples
                if held_out.classes[s.label] in index]


def _try_scan(source: Path) -> tuple[Scan | None, str | None]:
    try:
        return scan(source), None
    except DataError as exc:
        return None, str(exc)
    except OSError as exc:  # e.g. a folder that cannot be listed
        return None, f"cannot read {source}: {exc}"


def scan_sources(project: Any) -> Sources:
    """Scan the project's training source and, where they are given, its validation and test sources."""
    found = {key: _try_scan(project.resolve(project.get(key))) if project.get(key).strip() else (None, None)
             for key in ("data.train", "data.val", "data.test")}
    (train, train_error), (val, val_error), (test, test_error) = found.values()
    return Sources(train, val, train_error, val_error, test, test_error)


HELD_OUT = {"data.val": ("validation", "validated"), "data.test": ("test", "tested")}  # what it is, what is done


def path_problems(project: Any) -> list[tuple[str, str]]:
    """(key, why) for the data sources: chosen, and there (a folder, or an existing CSV list)."""
    if not project.data.train.strip():
        return [("data.train", "no training data chosen; choose an image folder or a CSV list")]
    found = []
    for key, what in (("data.train", "training"), *((key, what) for key, (what, _) in HELD_OUT.items())):
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


def share_problems(project: Any) -> list[tuple[str, str]]:
    """(key, why) for shares that leave nothing to train on, known before a scan (`shares_problem`)."""
    problem = shares_problem(*split_shares(project))
    return [("data.test_fraction", problem)] if problem else []


def source_problems(project: Any, sources: Sources) -> list[tuple[str, str]]:
    """(key, why) for each reason the scanned sources cannot be trained on as the project says: a source
    that failed to scan, validation or test classes the training data lacks, a split that leaves a class
    empty."""
    found = []
    if sources.train_error:
        found.append(("data.train", sources.train_error))
    for key, held, error in sources.held_out():
        what, done = HELD_OUT[key]
        if error:
            found.append((key, error))
        if sources.train is None or held is None:
            continue
        named = set(held.classes) | set(held.empty_classes)
        unknown = sorted(named - set(sources.train.classes) - set(sources.train.empty_classes))
        if unknown:
            found.append((key, f"{what} classes not in the training data: {', '.join(unknown)}; the {what} "
                               f"folder ({key}) must use the training folder's class names"))
        elif not sources.labelled(held):
            found.append((key, f"every {what} image is of a class without usable training images "
                               f"({_names(held.classes)}); nothing could be {done}"))
        else:
            found.extend(_overlap_problems(key, sources))
    if sources.train is not None:
        problem = split_problem(sources.train.counts(), *split_shares(project))
        if problem:
            found.append(problem)
    return found


def _overlap_problems(key: str, sources: Sources) -> list[tuple[str, str]]:
    """The same image in training and in a held-out source (or in validation and test): what it then measures
    is memory, not learning."""
    what = HELD_OUT[key][0]
    held = sources.val if key == "data.val" else sources.test
    others = [("training", sources.train), ("validation", sources.val if key == "data.test" else None)]
    mine = {os.path.realpath(s.path): s.path for s in held.samples}
    for other, scan in others:
        both = sorted(mine[p] for p in {os.path.realpath(s.path) for s in scan.samples} & set(mine)) if scan else []
        if both:
            return [(key, f"{len(both)} image(s) of the {what} data are also in the {other} data (e.g. {both[0]}); "
                          f"{what} would then measure memory, not learning: take them out of one of the two")]
    return []


def output_problem(project: Any, folder: Path) -> str | None:
    """Why a run may not write into `folder` (None if it may): the folder lies inside the data, which Thaw never
    writes into (a run there would also become a class folder of the next scan)."""
    for key, what in (("data.train", "training"), *((key, what) for key, (what, _) in HELD_OUT.items())):
        value = project.get(key).strip()
        source = project.resolve(value) if value else None
        if source is not None and source.suffix.lower() != ".csv" and inside(folder, source):
            return (f"{folder} is inside the {what} data {source} ({key}); Thaw never writes into the data: choose "
                    f"an output folder outside it, e.g. {source.resolve().parent / 'runs'}")
    return None


def split_sizes(project: Any, sources: Sources) -> tuple[int, int, int] | None:
    """How many training, validation and test images a run of the project has, from the image counts (None
    while a source it names has not scanned, or the split is not possible): what the window shows."""
    train = sources.train
    if train is None:
        return None
    counts, shares = train.counts(), split_shares(project)
    if split_problem(counts, *shares):
        return None
    given = [(project.get(key).strip(), held) for key, held, _ in sources.held_out()]
    if any(path and held is None for path, held in given):
        return None
    split_off = [sum(share_count(n, share) for n in counts.values()) for share in shares]
    val, test = (len(sources.labelled(held)) if path else n for (path, held), n in zip(given, split_off, strict=True))
    return len(train.samples) - sum(split_off), val, test


def source_warnings(project: Any, sources: Sources) -> list[tuple[str, str]]:
    """(key, why) for what the scanned sources make a run leave out or read its own way without stopping it:
    the training data's classes without usable images (a class with no images cannot be learned; its
    validation and test images are left out too), and how a CSV list was read (`Scan.notes`). An empty or
    absent class in a validation or test source needs no word: it is just not validated or tested."""
    found = [(key, note) for key, scan in (("data.train", sources.train), ("data.val", sources.val),
                                           ("data.test", sources.test)) if scan is not None for note in scan.notes]
    train = sources.train
    if train is not None and train.empty_classes:
        found.append(("data.train", _empty_classes_warning(project, sources)))
    by_key: dict[str, list[str]] = {}
    for key, why in found:  # one message per key: the window shows one under each field
        by_key.setdefault(key, []).append(why)
    return [(key, "; ".join(whys)) for key, whys in by_key.items()]


def _empty_classes_warning(project: Any, sources: Sources) -> str:
    train = sources.train
    empty = train.empty_classes
    one = len(empty) == 1
    why = (f"{'class' if one else 'classes'} {_names(empty)} {'has' if one else 'have'} no usable images in "
           f"{project.resolve(project.data.train)} and {'is' if one else 'are'} left out: a class with no usable "
           f"images cannot be learned; training on the other {len(train.classes)} classes")
    for key, held, _ in sources.held_out():
        left_out = [name for name, n in held.counts().items() if n and name in empty] if held is not None else []
        if left_out:
            why += f" (the {HELD_OUT[key][0]} images of {_names(left_out)} are left out too)"
    return f"{why}. Add images to {'it' if one else 'them'} to train {'it' if one else 'them'}"


def train_steps(n_images: int, batch_size: int) -> int:
    """Training steps in an epoch of `n_images`: a last batch of one image is left out (a step on one image fails
    in BatchNorm where a feature map is 1x1; `engine.loading.NoLoneBatch`), unless it is the only one."""
    full, rest = divmod(n_images, batch_size)
    return full + (rest > 1 or (rest == 1 and full == 0))
