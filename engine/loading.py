"""Images as tensors for training: transforms from the weights' preprocessing, datasets that decode and cache,
batches that carry the files that failed to decode, and loaders that are safe inside a Qt process.

A file that scanned fine (`engine.data.scan`) but fails to decode later is skipped by the loader and reported
through the batch (see `collate`).
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
)
from torchvision.transforms import InterpolationMode, v2

from engine.data import Sample, split, split_shares
from engine.errors import DataError
from engine.io.images import open_image
from engine.sources import path_problems, scan_sources, source_problems, source_warnings

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------- transforms


def _sizes(preprocess: Any, image_size: int) -> tuple[int, InterpolationMode]:
    """The resize before the centre crop, keeping the weights' resize-to-crop ratio at `image_size`."""
    crop0 = getattr(preprocess, "crop", image_size) or image_size
    resize0 = getattr(preprocess, "resize", crop0) or crop0
    interp = InterpolationMode(str(getattr(preprocess, "interpolation", "bilinear")).lower())
    return max(image_size, round(image_size * resize0 / crop0)), interp


def eval_geometry(preprocess: Any, image_size: int) -> v2.Compose:
    """Resize and centre-crop as evaluation does: the picture a prediction (and its saliency map) is of."""
    resize, interp = _sizes(preprocess, image_size)
    return v2.Compose([v2.Resize(resize, interpolation=interp, antialias=True), v2.CenterCrop(image_size)])


def build_transforms(preprocess: Any, image_size: int, augment: str, train: bool) -> v2.Compose:
    """Resize/crop/normalise as the weights expect, scaled to `image_size`; augmentation only when training.

    `preprocess` has `resize`, `crop`, `mean`, `std`, `interpolation` (see `engine.model.zoo.Preprocess`); the
    resize-to-crop ratio of the weights is kept at the project's image size.
    """
    mean = tuple(getattr(preprocess, "mean", IMAGENET_MEAN))
    std = tuple(getattr(preprocess, "std", IMAGENET_STD))
    _, interp = _sizes(preprocess, image_size)
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    if not train or augment == "none":
        return v2.Compose([*eval_geometry(preprocess, image_size).transforms, *tail])
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
    """Samples -> (image tensor, label). Images are decoded as a viewer shows them (`engine.io.images`).

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
        return self.transform(open_image(path))


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
    """A run's images. `test` (None without a test split) is held out for the evaluation after training: the
    training loop never reads it, neither to train nor to choose the best epoch."""

    classes: list[str]
    train: ImageDataset
    val: ImageDataset
    skipped: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)  # what the run leaves out (`engine.sources.source_warnings`)
    test: ImageDataset | None = None

    def class_counts(self) -> list[int]:
        """Training images per class, in class order."""
        c = Counter(self.train.labels)
        return [c.get(i, 0) for i in range(len(self.classes))]


def prepare_data(project: Any, preprocess: Any) -> DataBundle:
    """Scan, split and wrap the project's data; `DataError` for anything that cannot be trained on, and in
    `warnings` what is left out (a class without usable images) for the run to say."""
    d = project.data
    problems = path_problems(project)
    if problems:
        raise DataError(problems[0][1])
    sources = scan_sources(project)
    problems = source_problems(project, sources)
    if problems:
        raise DataError(problems[0][1])
    train_scan = sources.train
    val_share, test_share = split_shares(project)
    parts = split(train_scan.samples, val_share, project.train.seed, train_scan.classes, test_share)
    val_samples = sources.val_samples() if d.val.strip() else parts.val
    test_samples = sources.test_samples() if d.test.strip() else parts.test
    skipped = train_scan.skipped + [s for _, held, _ in sources.held_out() if held for s in held.skipped]
    size = d.image_size
    held_out = build_transforms(preprocess, size, d.augment, train=False)
    return DataBundle(
        classes=train_scan.classes,
        train=ImageDataset(parts.train, build_transforms(preprocess, size, d.augment, train=True), size,
                           cache=d.augment == "none"),
        val=ImageDataset(val_samples, held_out, size, cache=True),
        skipped=skipped,
        warnings=[why for _, why in source_warnings(project, sources)],
        test=ImageDataset(test_samples, held_out, size, cache=True) if test_samples else None,
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


class NoLoneBatch(BatchSampler):
    """Batches of `batch_size`, the last one left out when it would hold a single image: a training step on one
    image fails in BatchNorm wherever a feature map is 1x1 ("Expected more than 1 value per channel"), e.g.
    ResNet-18 at 32 px with 9 images in batches of 4, and its gradient is one image's anyway."""

    def __iter__(self):
        batches = super().__iter__()
        for i, batch in enumerate(batches):
            if len(batch) == 1 < self.batch_size and i > 0:
                return
            yield batch

    def __len__(self) -> int:
        return train_steps(len(self.sampler), self.batch_size)


def train_steps(n_images: int, batch_size: int) -> int:
    """Training steps in an epoch of `n_images`: a last batch of one image is left out (a step on one image fails
    in BatchNorm where a feature map is 1x1; `engine.loading.NoLoneBatch`), unless it is the only one."""
    full, rest = divmod(n_images, batch_size)
    return full + (rest > 1 or (rest == 1 and full == 0))


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, *,
                num_workers: int | None = None, pin_memory: bool = False,
                sampler: Sampler | None = None, training: bool = False) -> DataLoader:
    """A DataLoader that is safe inside a Qt process: in-process, or spawn/forkserver workers (never fork).

    Shuffling uses its own seeded generator, so the order does not depend on anything else in the process. A
    `sampler` (a distributed run's share of the images) replaces the loader's own order. A `training` loader
    leaves out a last batch of one image (`NoLoneBatch`).
    """
    images = dataset.dataset if isinstance(dataset, Subset) else dataset
    if num_workers is None:
        num_workers = choose_workers(len(dataset), getattr(images, "image_size", 0))
    generator = torch.Generator()
    generator.manual_seed(seed)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs = {"multiprocessing_context": "forkserver" if sys.platform.startswith("linux") else "spawn",
                  "persistent_workers": True, "worker_init_fn": _ignore_sigint, "prefetch_factor": 4}
    collate_fn = collate if isinstance(images, ImageDataset) else None
    if training:
        order = sampler or (RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset))
        return DataLoader(dataset, batch_sampler=NoLoneBatch(order, batch_size, drop_last=False),
                          num_workers=num_workers, collate_fn=collate_fn, generator=generator,
                          pin_memory=pin_memory, **kwargs)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=num_workers, collate_fn=collate_fn, generator=generator, pin_memory=pin_memory,
                      drop_last=False, **kwargs)
