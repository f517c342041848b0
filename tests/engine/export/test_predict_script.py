"""The bundle's standalone predict.py repeats Thaw's image decoding and preprocessing with Pillow and numpy:
on the table of image kinds it gives the same pixels as `engine.io.images.open_image`, and the same input
tensor as the run's evaluation transform, for the interpolations and sizes the architectures use."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.export import predict_script
from engine.export.preprocessing import describe
from engine.io.images import BACKGROUND, open_image
from engine.loading import build_transforms
from engine.model.zoo import Preprocess, arch_info
from tests.imagekinds import NAMES, write_kinds


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    return {k.name: k for k in write_kinds(tmp_path_factory.mktemp("kinds"))}


@pytest.mark.parametrize("name", NAMES)
def test_predict_py_decodes_every_kind_to_the_same_pixels_as_thaw(kinds, name):
    path = kinds[name].path
    ours = predict_script.decode(path, BACKGROUND)
    assert ours.mode == "RGB" and np.array_equal(np.asarray(ours), np.asarray(open_image(path)))


@pytest.mark.parametrize("preprocess, size", [
    (arch_info("resnet18").preprocess, 64),       # bilinear, resize 256/224 kept at 64 -> 73
    (arch_info("efficientnet_b0").preprocess, 48),  # bicubic
    (arch_info("vit_b_16").preprocess, 224),      # the architecture's fixed size
    (Preprocess(resize=32, crop=32, mean=(0.3,) * 3, std=(0.35,) * 3, interpolation="bilinear"), 32),  # demo
])
def test_predict_py_prepares_the_tensor_thaw_prepares(kinds, preprocess, size):
    transform = build_transforms(preprocess, size, "none", train=False)
    pre = describe(transform)
    tall = Image.fromarray(np.random.default_rng(1).integers(0, 256, (90, 61, 3), dtype=np.uint8))
    for image in [*(open_image(k.path) for k in kinds.values()), tall, tall.transpose(Image.Transpose.TRANSPOSE)]:
        want = transform(image).numpy()
        got = predict_script.prepare(image, pre)
        assert got.dtype == np.float32 and got.shape == want.shape == (3, size, size)
        assert np.abs(got - want).max() <= 1e-6


def test_a_transform_that_augments_cannot_be_described_for_export():
    with pytest.raises(ValueError, match="cannot describe"):
        describe(build_transforms(arch_info("resnet18").preprocess, 64, "light", train=True))


def test_the_interpolations_the_architectures_use_are_known_to_predict_py():
    from engine.model.zoo import list_architectures

    used = {arch_info(a).preprocess.interpolation for a in list_architectures()}
    assert used <= set(predict_script.RESAMPLE)
