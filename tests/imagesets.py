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
