"""An image file as a viewer shows it, in 8-bit RGB: the one decoding that training, evaluation, prediction,
the data panel's thumbnails and the Results view share (an exported bundle's `predict.py` repeats these steps
with PIL and numpy alone, and a test holds the two together).

The steps, in order:
1. the first frame (an animated GIF, WebP or PNG shows its first frame until it plays);
2. the EXIF orientation applied (`ImageOps.exif_transpose`): a phone photo stored sideways is seen upright;
3. high-bit-depth and float pixels scaled by their real range, not clipped: 16-bit images by 65535, 32-bit
   integer images by 65535 when their values fit 16 bits, else from their lowest to their highest value; float
   images by 1 when their values lie in 0..1, else from their lowest to their highest value;
4. transparency (an alpha channel, or a palette or colour marked transparent) composited on `BACKGROUND`;
5. anything else (CMYK, palette, grayscale, YCbCr, bilevel) converted to RGB by Pillow.
Colour profiles (ICC) are not applied.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

BACKGROUND = (255, 255, 255)  # what shows through transparent pixels: white, as on a page
_WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # 16-bit, 32-bit integer and float single-channel modes
_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")


def open_image(path: str | os.PathLike, max_side: int | None = None) -> Image.Image:
    """The image at `path` as a viewer shows it (steps above), in mode RGB. With `max_side`, shrunk to fit a
    square of that side (a JPEG is decoded at a reduced scale first, so thumbnails of big photos stay cheap).

    Raises what Pillow raises for a file it cannot read (OSError, ValueError, SyntaxError, EOFError,
    Image.DecompressionBombError)."""
    with Image.open(path) as im:
        if max_side is not None:
            im.draft("RGB", (max_side, max_side))
        im.seek(0)
        upright = ImageOps.exif_transpose(im)
        rgb = as_rgb(upright)
    if max_side is not None:
        rgb.thumbnail((max_side, max_side))
    return rgb


def as_rgb(im: Image.Image) -> Image.Image:
    """Steps 3 to 5 on a decoded image: 8-bit RGB, wide pixels scaled by their range, transparency composited."""
    if im.mode in _WIDE:
        im = Image.fromarray(_eight_bit(np.asarray(im)), "L")
    if im.mode in _ALPHA or "transparency" in im.info:
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _eight_bit(a: np.ndarray) -> np.ndarray:
    """One channel of 16-bit, 32-bit integer or float values as 0..255 by the range they are in (see the
    module's step 3); NaN and infinities count as 0."""
    nominal = 1.0 if a.dtype.kind == "f" else 65535.0
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if low >= 0.0 and high <= nominal:
        scaled = a / nominal
    else:
        scaled = (a - low) / (high - low) if high > low else np.zeros_like(a)
    return np.round(scaled * 255.0).astype(np.uint8)
