"""Image files of many kinds, each written beside the picture a viewer shows for it (8-bit RGB, worked out with
numpy from the format's definition, not by the decoder under test): the table that the engine's image decoding
(`engine.io.images`), the data panel's thumbnails and an export's standalone `predict.py` are checked against."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 48, 32  # not square, so a turn shows in the shape
WHITE = 255.0
NAMES = ("rgb8", "gray8", "gray16", "rgb16", "float_tiff", "float_tiff_wide", "cmyk_jpeg", "rgba", "gray_alpha",
         "palette_transparent", *(f"exif{k}" for k in range(1, 9)), "animated_gif", "webp", "webp_alpha")


@dataclass(frozen=True)
class Kind:
    name: str
    path: Path
    shown: np.ndarray   # (H, W, 3) uint8: what a viewer shows
    tolerance: int      # in levels of 255 (lossy formats, 16 -> 8 bit rounding)


def picture(seed: int = 0) -> np.ndarray:
    """A smooth, asymmetric RGB picture (JPEG keeps smooth gradients within a level or two)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    rng = np.random.default_rng(seed)
    a, b, c = rng.uniform(0.5, 1.5, 3)
    r = 30 + 200 * x / (W - 1)
    g = 40 + 170 * (y / (H - 1)) ** a
    bl = 128 + 100 * np.sin(b * x / 9 + c * y / 7)
    return np.stack([r, g, bl], -1).round().clip(0, 255).astype(np.uint8)


def _gray(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, -1)


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float64)[..., None] / 255
    return (rgb * a + WHITE * (1 - a)).round().astype(np.uint8)


def _png16_rgb(path: Path, a: np.ndarray) -> None:
    """A 16-bit RGB PNG written chunk by chunk (Pillow cannot write one)."""
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[row].astype(">u2").tobytes() for row in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# How each EXIF orientation stores the upright picture T (its inverse is what a viewer applies), from the
# EXIF 2.3 definition of where the 0th row and column are shown.
_STORED = {
    1: lambda t: t,
    2: lambda t: t[:, ::-1],                      # mirrored left-right
    3: lambda t: t[::-1, ::-1],                   # turned 180
    4: lambda t: t[::-1],                         # mirrored top-bottom
    5: lambda t: t.transpose(1, 0, 2),            # mirrored along the main diagonal
    6: lambda t: np.rot90(t, 1),                  # shown turned 90 clockwise: stored turned 90 anticlockwise
    7: lambda t: np.rot90(t, 2).transpose(1, 0, 2),  # mirrored along the other diagonal
    8: lambda t: np.rot90(t, -1),                 # shown turned 90 anticlockwise
}


def write_kinds(folder: Path) -> list[Kind]:
    """Every kind in `folder`, in the order of `NAMES` (the test ids)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = picture()
    gray = t[..., 1]
    kinds: list[Kind] = []

    def add(name: str, suffix: str, shown: np.ndarray, tolerance: int, save) -> None:
        path = folder / f"{name}{suffix}"
        save(path)
        kinds.append(Kind(name, path, shown, tolerance))

    add("rgb8", ".png", t, 0, lambda p: Image.fromarray(t).save(p))
    add("gray8", ".png", _gray(gray), 0, lambda p: Image.fromarray(gray).save(p))
    add("gray16", ".png", _gray(gray), 0, lambda p: Image.fromarray(gray.astype(np.uint16) * 257).save(p))
    wide = t.astype(np.uint16) * 257 + 100  # the low byte set: 16 -> 8 bits rounds within a level
    add("rgb16", ".png", t, 1, lambda p: _png16_rgb(p, wide))
    add("float_tiff", ".tif", _gray(gray), 0,
        lambda p: Image.fromarray((gray / 255).astype(np.float32)).save(p))
    span = gray.astype(np.float32) * 4 - 300  # values beyond 0..1: shown from lowest to highest
    add("float_tiff_wide", ".tif",
        _gray(((span - span.min()) / (span.max() - span.min()) * 255).round().astype(np.uint8)), 0,
        lambda p: Image.fromarray(span).save(p))
    cmyk = np.stack([255 - t[..., 0], 255 - t[..., 1], 255 - t[..., 2], np.full_like(gray, 60)], -1)
    cmyk[..., :3] = (cmyk[..., :3].astype(np.int16) - 60).clip(0, 255).astype(np.uint8)
    cmyk_shown = ((255 - cmyk[..., :3].astype(np.float64)) * (255 - 60) / 255).round().astype(np.uint8)
    add("cmyk_jpeg", ".jpg", cmyk_shown, 3, lambda p: Image.fromarray(cmyk, "CMYK").save(p, quality=100))
    alpha = np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))
    add("rgba", ".png", _over_white(t, alpha), 1,
        lambda p: Image.fromarray(np.dstack([t, alpha]), "RGBA").save(p))
    add("gray_alpha", ".png", _over_white(_gray(gray), alpha), 1,
        lambda p: Image.fromarray(np.dstack([gray, alpha]), "LA").save(p))
    palette = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [240, 240, 0]], np.uint8)
    index = (np.arange(W)[None, :] // 12 + np.arange(H)[:, None] // 16 * 2) % 4
    index[:8, :8] = 0
    shown_p = palette[index].copy()
    shown_p[index == 0] = 255  # colour 0 is transparent

    def save_palette(p: Path) -> None:
        im = Image.fromarray(index.astype(np.uint8), "P")
        im.putpalette(palette.ravel().tolist())
        im.save(p, transparency=0)

    add("palette_transparent", ".png", shown_p, 0, save_palette)
    for k, stored in _STORED.items():
        def save_exif(p: Path, k=k, stored=stored) -> None:
            exif = Image.Exif()
            exif[0x0112] = k
            Image.fromarray(np.ascontiguousarray(stored(t))).save(p, quality=100, subsampling=0, exif=exif)

        add(f"exif{k}", ".jpg", t, 5, save_exif)
    first, second = palette[index], palette[(index + 1) % 4]

    def save_gif(p: Path) -> None:
        frames = [Image.fromarray(f) for f in (first, second)]
        frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)

    add("animated_gif", ".gif", first, 0, save_gif)
    add("webp", ".webp", t, 0, lambda p: Image.fromarray(t).save(p, lossless=True))
    add("webp_alpha", ".webp", _over_white(t, alpha), 1,
        lambda p: Image.fromarray(np.dstack([t, alpha]), "RGBA").save(p, lossless=True, exact=True))
    assert tuple(k.name for k in kinds) == NAMES
    return kinds
