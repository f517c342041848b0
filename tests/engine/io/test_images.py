"""`engine.io.images.open_image`, the one way Thaw decodes an image (training, evaluation, saliency, the window's
pictures): for each kind of file (tests/imagekinds.py), the tensor the training loader gives equals the picture
worked out from the format's definition; RGB whatever the file's mode; a thumbnail the picture scaled to fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from engine.data import Sample
from engine.io.images import open_image
from engine.loading import ImageDataset
from tests.imagekinds import NAMES, H, W, write_kinds


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    return {k.name: k for k in write_kinds(tmp_path_factory.mktemp("kinds"))}


@pytest.mark.parametrize("name", NAMES)
def test_the_loader_gives_the_picture_a_viewer_shows(kinds, name):
    kind = kinds[name]
    as_is = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    x, _ = ImageDataset([Sample(str(kind.path), 0)], as_is, max(W, H))[0]
    assert tuple(x.shape) == (3, H, W)
    expected = torch.from_numpy(kind.shown).permute(2, 0, 1).float() / 255
    assert (x - expected).abs().max().item() <= (kind.tolerance + 0.5) / 255


def test_a_thumbnail_keeps_the_shape_and_fits_the_square(kinds):
    image = open_image(kinds["exif6"].path, max_side=24)
    assert image.mode == "RGB" and image.size == (24, 16)  # upright (wider than high), shrunk to fit 24 px
    small = np.asarray(Image.fromarray(kinds["exif6"].shown).resize((24, 16), Image.Resampling.BICUBIC), np.int16)
    assert np.abs(np.asarray(image, np.int16) - small).mean() < 4


def test_a_float_image_of_one_value_is_black_not_an_error(tmp_path):
    Image.fromarray(np.full((8, 8), 7.5, np.float32)).save(tmp_path / "flat.tif")
    assert np.asarray(open_image(tmp_path / "flat.tif")).max() == 0


def test_every_mode_comes_back_rgb(tmp_path):
    for mode in ("L", "P", "RGBA"):
        path = tmp_path / f"{mode}.png"
        Image.new(mode, (20, 10)).save(path)
        im = open_image(path)
        assert im.mode == "RGB" and im.size == (20, 10)


def test_a_jpeg_thumbnail_is_the_same_picture_fitted_to_the_size_asked(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (1600, 1200), (200, 30, 30)).save(path, quality=90)
    small = open_image(path, max_side=128)  # decoded at a reduced scale (draft), then fitted
    assert small.mode == "RGB" and small.size == (128, 96)
    assert np.abs(np.asarray(small, np.int16) - (200, 30, 30)).max() <= 3
    assert open_image(path).size == (1600, 1200)


def test_the_training_dataset_decodes_through_it(tmp_path):
    path = tmp_path / "gray.png"
    Image.new("L", (8, 8), 128).save(path)
    x, label = ImageDataset([Sample(str(path), 2)], lambda im: im, 8)[0]
    assert label == 2 and x.mode == "RGB" and x.tobytes() == open_image(path).tobytes()
