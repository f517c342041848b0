"""Tiny image data sets written by tests: drawn shapes a small model can learn in a few steps."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def draw(shape: str, size: int, rng: random.Random, mode: str = "RGB") -> Image.Image:
    bg = tuple(rng.randrange(0, 80) for _ in range(3))
    fg = tuple(rng.randrange(150, 256) for _ in range(3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    r = rng.uniform(0.25, 0.4) * size
    cx, cy = (rng.uniform(0.4, 0.6) * size for _ in range(2))
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return im.convert(mode)


def make_image_folder(root: Path, per_class: int = 8, size: int = 32, classes=SHAPES, seed: int = 0,
                      grayscale_every: int = 0) -> Path:
    """root/<shape>/<i>.png; every `grayscale_every`-th image is saved in mode L."""
    rng = random.Random(seed)
    for shape in classes:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            mode = "L" if grayscale_every and i % grayscale_every == 0 else "RGB"
            draw(shape, size, rng, mode).save(root / shape / f"{i:03d}.png")
    return root


def shapes_project(tmp_path: Path, per_class: int = 8, classes=SHAPES, **settings):
    """A project on a shapes folder (``tmp_path/train``, written unless it is there): the demo CNN from scratch
    at 32 px, 2 quick epochs. Tests get it from the `project_factory` fixture (tests/conftest.py); scripts that
    a test runs in another process call it directly.

    `settings` are dotted keys with '__' for '.', e.g. ``train__epochs=3``.
    """
    from engine.project import Project

    if not (tmp_path / "train").exists():
        make_image_folder(tmp_path / "train", per_class=per_class, classes=classes)
    p = Project(name="shapes", base_dir=tmp_path)
    base = {"model.arch": "thaw_digits_cnn", "model.weights": "none", "data.train": "train",
            "data.image_size": 32, "data.augment": "none", "data.val_fraction": 0.25, "freeze.preset": "full",
            "train.epochs": 2, "train.batch_size": 8, "train.lr": 0.01, "train.out_dir": "runs"}
    base.update({k.replace("__", "."): v for k, v in settings.items()})
    for key, value in base.items():
        p.set(key, value)
    return p
