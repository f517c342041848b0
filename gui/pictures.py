"""Image files as Qt images: the engine's one decoder (`engine.io.images.open_image`: upright, wide pixels scaled
by their range, transparency on white) handed to Qt, for every thumbnail and picture the window shows. A QImage
owns its pixels, so it may be made off the GUI thread and shown on it."""

from __future__ import annotations

import os

from PySide6.QtGui import QImage

from engine.io.images import open_image


def to_qimage(picture) -> QImage:
    """A PIL RGB image as a QImage that owns its pixels (safe to hand to another thread)."""
    data = picture.tobytes("raw", "RGB")
    return QImage(data, picture.width, picture.height, 3 * picture.width, QImage.Format.Format_RGB888).copy()


def decode(path: str | os.PathLike, size: int) -> QImage:
    """The picture of one file, at most `size` pixels on its longer side; raises what Pillow raises for a file
    it cannot read."""
    return to_qimage(open_image(path, max_side=size))
