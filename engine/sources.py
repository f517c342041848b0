"""The rules a project's training, validation and test sources must meet (`path_problems`, `share_problems`,
`source_problems`, `output_problem`, and `source_warnings` for what a run leaves out), written once for the
preflight, the window and the run; `split_sizes` is the split the data panel shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.data import Sample, Scan, quoted, scan, share_count, shares_problem, split_problem, split_shares
from engine.errors import DataError
from engine.io.ownership import inside
from engine.io.space import nearest_existing


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
                               f"({quoted(held.classes)}); nothing could be {done}"))
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
    mine = {_identity(s.path): s.path for s in held.samples}
    for other, found in others:
        both = sorted(mine[p] for p in {_identity(s.path) for s in found.samples} & set(mine)) if found else []
        if both:
            return [(key, f"{len(both)} image(s) of the {what} data are also in the {other} data (e.g. {both[0]}); "
                          f"{what} would then measure memory, not learning: take them out of one of the two")]
    return []


def _identity(path: str) -> tuple[int, int] | str:
    """The file a path names, however it is reached (a link, another spelling): its device and inode. One stat
    each, ten times cheaper than `os.path.realpath`'s walk of every component (the window checks this on its GUI
    thread)."""
    try:
        st = os.stat(path)
    except OSError:  # gone since the scan: its spelling is all there is
        return os.path.realpath(path)
    return st.st_dev, st.st_ino


def output_problem(project: Any, folder: Path) -> str | None:
    """Why a run may not write into `folder` (None if it may): the folder lies inside the data, which Thaw never
    writes into (a run there would also become a class folder of the next scan); or a file stands where a
    folder on its way would be made."""
    existing = nearest_existing(folder)
    if not existing.is_dir():
        made = "" if existing == Path(folder) else f", so {folder} cannot be made there"
        return f"{existing} is a file, not a folder{made}; choose another output folder"
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
    why = (f"{'class' if one else 'classes'} {quoted(empty)} {'has' if one else 'have'} no usable images in "
           f"{project.resolve(project.data.train)} and {'is' if one else 'are'} left out: a class with no usable "
           f"images cannot be learned; training on the other {len(train.classes)} classes")
    for key, held, _ in sources.held_out():
        left_out = [name for name, n in held.counts().items() if n and name in empty] if held is not None else []
        if left_out:
            why += f" (the {HELD_OUT[key][0]} images of {quoted(left_out)} are left out too)"
    return f"{why}. Add images to {'it' if one else 'them'} to train {'it' if one else 'them'}"
