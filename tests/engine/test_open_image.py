"""`engine.loading.open_image`, the one way Thaw decodes an image (training, evaluation, saliency, the window's
pictures): RGB whatever the file's mode, and a JPEG decoded at a reduced scale when only a small picture is
needed, never below the size asked for."""

from __future__ import annotations

from PIL import Image

from engine.data import Sample
from engine.loading import ImageDataset, open_image


def test_every_mode_comes_back_rgb(tmp_path):
    for mode in ("L", "P", "RGBA"):
        path = tmp_path / f"{mode}.png"
        Image.new(mode, (20, 10)).save(path)
        im = open_image(path)
        assert im.mode == "RGB" and im.size == (20, 10)


def test_a_jpeg_for_a_thumbnail_decodes_smaller_but_not_below_the_size_asked(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (1600, 1200), (200, 30, 30)).save(path, quality=90)
    small = open_image(path, max_side=128)
    assert small.mode == "RGB" and min(small.size) >= 128 and max(small.size) <= 400
    assert small.size[0] * 3 == small.size[1] * 4  # the same picture, scaled
    assert open_image(path).size == (1600, 1200)


def test_the_training_dataset_decodes_through_it(tmp_path):
    path = tmp_path / "gray.png"
    Image.new("L", (8, 8), 128).save(path)
    x, label = ImageDataset([Sample(str(path), 2)], lambda im: im, 8)[0]
    assert label == 2 and x.mode == "RGB" and x.tobytes() == open_image(path).tobytes()
