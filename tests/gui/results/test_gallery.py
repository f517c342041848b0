"""The gallery with 10,000 images: laid out at once, thumbnails decoded off the GUI thread only for the cells
painted, through the engine's decoder; an unreadable file shows as such."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtGui import QPixmapCache

from engine.io.images import open_image
from engine.results.metrics import Predictions
from gui.results.gallery import Gallery
from gui.results.thumbnails import Thumbnails

N = 10_000


def predictions(paths: list[str], classes=("cat", "dog")) -> Predictions:
    n = len(paths)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    top = np.stack([labels, 1 - labels], 1)
    top[::3] = top[::3, ::-1]  # every third one wrong
    confidence = np.sort(rng.uniform(0.5, 1.0, n))[::-1]
    probs = np.stack([confidence, 1 - confidence], 1)
    return Predictions(list(classes), paths, labels, top, probs, rng.uniform(0, 2, n))


def test_ten_thousand_images_decode_only_what_is_painted(qtbot, tmp_path):
    real = []
    for k in range(40):
        path = tmp_path / f"{k}.png"
        Image.new("RGB", (64, 48), (k * 6, 100, 200 - k * 4)).save(path)
        real.append(str(path))
    paths = real + [str(tmp_path / f"missing-{k}.png") for k in range(N - len(real))]
    thumbnails = Thumbnails(size=48)
    gallery = Gallery(thumbnails)
    qtbot.addWidget(gallery)
    gallery.resize(500, 400)
    gallery.show()
    qtbot.waitExposed(gallery)
    gallery.show_images(predictions(paths), np.arange(N))
    assert gallery.gallery_model.rowCount() == N
    qtbot.waitUntil(lambda: thumbnails.decoded > 0 and not thumbnails.is_busy(), timeout=30_000)
    cell = gallery.gridSize()
    visible = (500 // cell.width() + 1) * (400 // cell.height() + 2)
    asked = thumbnails.decoded + len(thumbnails.failed)
    assert 0 < asked <= visible  # the cells on screen, not the 10,000
    first = QPixmapCache.find(thumbnails.key(real[0]))
    assert first is not None and max(first.width(), first.height()) == 48
    expected = open_image(real[0], max_side=48)
    assert first.toImage().pixelColor(5, 5).getRgb()[:3] == expected.getpixel((5, 5))

    gallery.scrollToBottom()  # the last screen: its cells are asked for, all missing files
    qtbot.waitUntil(lambda: any(p.endswith(f"missing-{N - len(real) - 1}.png") for p in thumbnails.failed),
                    timeout=30_000)
    qtbot.waitUntil(lambda: not thumbnails.is_busy(), timeout=30_000)
    assert len(thumbnails.failed) + thumbnails.decoded <= 3 * visible
    assert "cannot be read" in next(iter(thumbnails.failed.values()))
    thumbnails.shutdown()
