"""The built-in demo: two transfer-learning targets built from scikit-learn's handwritten digits.

The source model (`engine.model.digits_cnn`) learned digits 0-4 from a recorded subset of ``load_digits()``.
- **inductive** (same domain, new task): digits 5-9, clean, as the source saw its digits.
- **transductive** (new domain, same task): the digits 0-4 the source never saw, as a poor scan: each image
  is tilted by a random angle in [-25, 25] degrees, blurred (Gaussian, radius 1), inverted to dark ink on
  grey paper (paper 0.85, ink 0.15) and given Gaussian noise (sd 0.08); angles and noise come from the seed.

`ensure_demo` writes a target on first use as ordinary PNG image folders (``images/train/<class>`` with
`per_class` labelled images per class, ``images/val/<class>`` with the rest, or with `val_per_class` of them
and ``images/test/<class>`` with the rest) and a ready project file beside them, and reuses them afterwards.
Same seed, same files.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from engine import project as projects
from engine.demo.source import SOURCE_DIGITS, load_digits_uint8, upscale
from engine.errors import DataError
from engine.io.atomic import write_text_atomic
from engine.io.locations import data_dir
from engine.model.digits_cnn import DEMO_ARCH, INPUT_SIZE, load_meta

BUILD_VERSION = 2  # bump when the images a seed produces change, so old demo folders are rebuilt
MANIFEST = "manifest.json"
LAYOUT = "train/val/test"  # in the manifest: capped builds made before the test split had none


@dataclass(frozen=True)
class Scenario:
    key: str
    folder: str
    title: str
    digits: tuple[int, ...]
    shifted: bool


SCENARIOS: dict[str, Scenario] = {
    "inductive": Scenario("inductive", "digits-5to9", "Inductive transfer: new task (digits 5-9), same domain",
                          (5, 6, 7, 8, 9), shifted=False),
    "transductive": Scenario("transductive", "digits-0to4-scanned",
                             "Transductive transfer: same task (digits 0-4), new domain (a poor scan)",
                             SOURCE_DIGITS, shifted=True),
}


def demo_folder(scenario: str = "inductive", per_class: int = 10, seed: int = 0, root: Path | None = None,
                val_per_class: int | None = None) -> Path:
    """Where `ensure_demo` keeps a target: ``<data dir>/demos/<folder>`` (suffixed unless the defaults)."""
    spec = _scenario(scenario)
    name = spec.folder if (per_class, seed) == (10, 0) else f"{spec.folder}-{per_class}per-class-seed{seed}"
    if val_per_class is not None:
        name += f"-val{val_per_class}"
    return (Path(root) if root is not None else data_dir() / "demos") / name


def ensure_demo(scenario: str = "inductive", per_class: int = 10, seed: int = 0, root: Path | None = None,
                val_per_class: int | None = None) -> Path:
    """The demo's project file, writing its images and the file first where they are missing or incomplete.

    `val_per_class` caps the validation images per class (default: all the rest); the rest then goes to
    ``images/test``, which the project does not use: the benchmark measures the trained model there once, on
    images that took no part in training or validation, and keeps the validation curves cheap.
    An existing project file is kept (the person may have edited it); images are rebuilt as a whole unless
    their manifest says they are this build, and every file it lists is there.
    """
    spec = _scenario(scenario)
    folder = demo_folder(scenario, per_class, seed, root, val_per_class)
    images = folder / "images"
    if not _complete(images, spec, per_class, seed, val_per_class):
        _write_images(images, spec, per_class, seed, val_per_class)
    project_file = folder / f"{spec.folder}.thaw.toml"
    if not project_file.is_file():
        projects.save(demo_project(spec, seed, folder), project_file)
    return project_file


def demo_project(spec: Scenario, seed: int, folder: Path) -> projects.Project:
    """The ready project: the shipped source CNN, its last block and a new cosine head trained; seconds on a CPU."""
    p = projects.Project(name=f"{spec.folder} ({spec.key} transfer demo)", base_dir=folder)
    for key, value in {
        "model.arch": DEMO_ARCH, "model.weights": "pretrained",
        "data.train": "images/train", "data.val": "images/val", "data.image_size": INPUT_SIZE,
        "data.augment": "none",
        "freeze.preset": "last_blocks", "freeze.last_blocks": 1, "head.kind": "cosine", "head.dropout": 0.0,
        "train.epochs": 30, "train.batch_size": 16, "train.lr": 0.003, "train.backbone_lr_mult": 1.0,
        "train.scheduler": "cosine", "train.activity_every": 4,  # which layers learn: once an epoch (4 steps)
        "train.seed": seed,
    }.items():
        p.set(key, value)
    return p


def build_images(scenario: str, per_class: int = 10, seed: int = 0,
                 val_per_class: int | None = None) -> dict[str, bytes]:
    """Every PNG of a target by relative path (``train/5/0123.png``: split, class, index into load_digits).

    The splits are train (`per_class` per class), val (`val_per_class`, or all the rest) and test (the rest)."""
    spec = _scenario(scenario)
    images, labels = load_digits_uint8()
    pool = _target_pool(spec, labels)
    rng = np.random.default_rng([seed, BUILD_VERSION])
    files: dict[str, bytes] = {}
    for digit in spec.digits:
        candidates = pool[labels[pool] == digit]
        if not 1 <= per_class < len(candidates):
            raise DataError(f"the {spec.key} demo has {len(candidates)} images of digit {digit}; choose "
                            f"between 1 and {len(candidates) - 1} labelled images per class, not {per_class}")
        if val_per_class is not None and not 1 <= val_per_class <= len(candidates) - per_class:
            raise DataError(f"the {spec.key} demo has {len(candidates) - per_class} validation images of digit "
                            f"{digit} left; choose between 1 and that many, not {val_per_class}")
        order = rng.permutation(candidates)
        end = len(order) if val_per_class is None else per_class + val_per_class
        for split, chosen in (("train", order[:per_class]), ("val", order[per_class:end]), ("test", order[end:])):
            for index in sorted(int(i) for i in chosen):
                image = upscale(images[index])
                if spec.shifted:
                    image = poor_scan(image, np.random.default_rng([seed, BUILD_VERSION, index]))
                files[f"{split}/{digit}/{index:04d}.png"] = _png(image)
    return files


def poor_scan(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The transductive domain shift: tilted, blurred, inverted onto grey paper, noisy."""
    tilted = image.rotate(float(rng.uniform(-25, 25)), resample=Image.Resampling.BILINEAR, fillcolor=0)
    ink = np.asarray(tilted.filter(ImageFilter.GaussianBlur(1)), dtype=np.float64) / 255.0
    paper = 0.85 - 0.7 * ink + rng.normal(0.0, 0.08, ink.shape)
    return Image.fromarray(np.rint(np.clip(paper, 0, 1) * 255).astype(np.uint8), mode="L")


def source_train_indices() -> set[int]:
    """The indices into load_digits() the shipped source model trained on (from its metadata)."""
    return set(load_meta()["train_indices"])


def _scenario(scenario: str) -> Scenario:
    try:
        return SCENARIOS[scenario]
    except KeyError:
        raise DataError(f"unknown demo {scenario!r}; choose one of {', '.join(SCENARIOS)}") from None


def _target_pool(spec: Scenario, labels: np.ndarray) -> np.ndarray:
    """Indices a target may use: its digits, minus every image the source model trained on."""
    seen = source_train_indices()
    return np.array([i for i in np.flatnonzero(np.isin(labels, spec.digits)) if int(i) not in seen])


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _manifest(spec: Scenario, per_class: int, seed: int, val_per_class: int | None,
              files: dict[str, bytes]) -> dict:
    return {"scenario": spec.key, "per_class": per_class, "seed": seed, "val_per_class": val_per_class,
            "version": BUILD_VERSION, "layout": LAYOUT,
            "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}}


def _complete(images: Path, spec: Scenario, per_class: int, seed: int, val_per_class: int | None) -> bool:
    try:
        manifest = json.loads((images / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    keys = ("scenario", "per_class", "seed", "val_per_class", "version", "layout")
    want = (spec.key, per_class, seed, val_per_class, BUILD_VERSION, LAYOUT)
    return tuple(manifest.get(k) for k in keys) == want and all(
        (images / name).is_file() for name in manifest.get("files", ())
    )


def _write_images(images: Path, spec: Scenario, per_class: int, seed: int, val_per_class: int | None) -> None:
    """Write all images into a temporary folder, then swap it in: never a half-written demo."""
    files = build_images(spec.key, per_class, seed, val_per_class)
    images.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".images-", dir=images.parent))
    try:
        for name, data in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        write_text_atomic(tmp / MANIFEST, json.dumps(_manifest(spec, per_class, seed, val_per_class, files), indent=1) + "\n")
        if images.exists():
            shutil.rmtree(images)
        try:
            tmp.rename(images)
        except OSError:  # another process swapped in its build first; keep it if it is complete
            if not _complete(images, spec, per_class, seed, val_per_class):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
