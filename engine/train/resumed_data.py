"""A resumed run trains on the data it started with: the same classes in the same order, and its own split.

The split a run makes is kept in its checkpoints (`split_record`). Resuming, the data scanned now must have
the run's classes, in its order: a renamed, added or removed class folder would silently change what each
output of the model means, so it is refused with both lists. Images added since the run started are not
used (they would change the split); images gone since are left out. Both are said.
"""

from __future__ import annotations

from typing import Any

from engine.data import Sample
from engine.errors import DataError
from engine.loading import DataBundle, ImageDataset

PARTS = ("train", "val", "test")


def split_record(data: DataBundle) -> dict[str, list[list[Any]]]:
    """The run's split as it goes into a checkpoint: [path, label] per image, per part."""
    return {part: [[s.path, s.label] for s in ds.samples] if ds is not None else []
            for part, ds in zip(PARTS, (data.train, data.val, data.test), strict=True)}


def as_the_run_had(data: DataBundle, meta: dict[str, Any]) -> tuple[DataBundle, str | None]:
    """`data` (scanned now) turned into what the run of checkpoint `meta` trained on, and what changed (None
    when nothing did); `DataError` if the classes are not the run's."""
    had = list(meta["classes"])
    if list(data.classes) != had:
        raise DataError(f"the data now has classes {list(data.classes)}; the run had {had}. Resuming would change "
                        "what the model's outputs mean: put the class folders back as they were (the same names), "
                        "or start a new run")
    record = meta.get("split")
    if record is None:  # a checkpoint from before the split was kept: the seeded split is made again
        return data, None
    now = {s.path for ds in (data.train, data.val, data.test) if ds is not None for s in ds.samples}
    kept = {part: [Sample(p, label) for p, label in record[part] if p in now] for part in PARTS}
    had_paths = {p for part in PARTS for p, _ in record[part]}
    gone = len(had_paths - now)
    added = len(now - had_paths)
    template = {"train": data.train, "val": data.val, "test": data.test or data.val}
    parts = {part: ImageDataset(kept[part], template[part].transform, template[part].image_size,
                                cache=template[part].cache) for part in PARTS}
    resumed = DataBundle(data.classes, parts["train"], parts["val"], data.skipped, data.warnings,
                         parts["test"] if kept["test"] else None)
    changes = []
    if gone:
        changes.append(f"{gone} of its images are gone or unreadable and are left out")
    if added:
        changes.append(f"{added} image(s) were added and are not used (a resumed run keeps its split; a new run "
                       "uses them)")
    return resumed, ("since the run started, " + "; ".join(changes)) if changes else None
