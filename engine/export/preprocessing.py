"""What an image goes through before the model, written down (preprocessing.json) from the very transform the
run's evaluation uses, so the file cannot say something other than what Thaw does."""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import v2

from engine.io.images import BACKGROUND


def describe(transform: v2.Compose) -> dict[str, Any]:
    """The evaluation transform (`engine.loading.build_transforms(train=False)`: resize, centre crop, to 0..1,
    normalise) as plain values, with the decoding steps of `engine.io.images` before it."""
    steps = transform.transforms
    kinds = [type(s) for s in steps]
    if kinds != [v2.Resize, v2.CenterCrop, v2.ToImage, v2.ToDtype, v2.Normalize]:
        raise ValueError(f"cannot describe this transform for export: {transform}")
    resize, crop, _, to_dtype, normalize = steps
    if resize.max_size is not None or len(resize.size) != 1 or to_dtype.dtype != torch.float32 or not to_dtype.scale:
        raise ValueError(f"cannot describe this transform for export: {transform}")
    height, width = crop.size
    return {
        "decode": {
            "frame": "first",
            "exif_orientation": "applied first (PIL.ImageOps.exif_transpose)",
            "wide_pixels": "16-bit by 65535; 32-bit integer by 65535 if within 0..65535; float by 1 if within "
                           "0..1; otherwise each from its lowest to its highest value; then rounded to 8 bits",
            "transparency": "composited on background",
            "background": list(BACKGROUND),
            "mode": "RGB, 8 bits (CMYK and the rest converted by Pillow; no ICC profile applied)",
        },
        "resize": {"shorter_side": int(resize.size[0]), "interpolation": resize.interpolation.value,
                   "antialias": True, "longer_side": "int(shorter_side * longer / shorter), as torchvision",
                   "library": "Pillow (Image.resize)"},
        "center_crop": [int(height), int(width)],
        "crop_offset": "round((size - crop) / 2), as torchvision",
        "value_range": [0.0, 1.0],
        "scale": "uint8 / 255",
        "mean": [float(m) for m in normalize.mean],
        "std": [float(s) for s in normalize.std],
        "channel_order": "RGB",
        "layout": "NCHW",
        "dtype": "float32",
        "input_size": [int(height), int(width)],
    }
