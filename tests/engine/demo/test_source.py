"""The shipped source model: its metadata, its training subset, its weights, and a deterministic build."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from engine.demo.source import (
    SOURCE_DIGITS,
    TRAIN_PER_CLASS,
    load_digits_uint8,
    source_train_indices,
    train_source,
    upscale,
)
from engine.model import zoo
from engine.model.digits_cnn import DEMO_ARCH, INPUT_SIZE, SOURCE_META, SOURCE_WEIGHTS, DigitsCNN, load_meta


def _shipped_model() -> DigitsCNN:
    """The source model as the app opens it: through the zoo, with "pretrained" weights."""
    model = zoo.build_model(DEMO_ARCH, "pretrained")
    assert isinstance(model, DigitsCNN)
    shipped = load_file(str(SOURCE_WEIGHTS))
    assert all(torch.equal(v, shipped[k]) for k, v in model.state_dict().items())
    return model.eval()


def test_metadata_records_classes_size_normalisation_and_training_images():
    meta = load_meta()
    _, labels = load_digits_uint8()
    assert meta["classes"] == ["0", "1", "2", "3", "4"]
    assert meta["input_size"] == INPUT_SIZE == 32
    assert len(meta["mean"]) == len(meta["std"]) == 3 and min(meta["std"]) > 0
    assert meta["train_indices"] == source_train_indices(labels)
    counts = np.bincount(labels[meta["train_indices"]], minlength=10)
    assert counts.tolist() == [TRAIN_PER_CLASS] * 5 + [0] * 5


def test_shipped_files_are_small():
    assert SOURCE_WEIGHTS.stat().st_size < 1_000_000
    assert SOURCE_META.stat().st_size < 100_000


def test_shipped_model_has_the_expected_blocks():
    model = _shipped_model()
    assert [name for name, _ in model.named_children()] == ["stem", "block1", "block2", "block3", "pool", "fc"]
    for name in ("stem", "block1", "block2", "block3"):
        assert any(isinstance(m, nn.BatchNorm2d) for m in getattr(model, name).modules()), name
    assert model.fc.out_features == len(SOURCE_DIGITS)


def test_shipped_model_recognises_held_out_digits_0_to_4():
    meta = load_meta()
    images, labels = load_digits_uint8()
    seen = set(meta["train_indices"])
    held = [i for i in np.flatnonzero(labels < 5) if int(i) not in seen]
    x = np.stack([np.asarray(upscale(images[i]), dtype=np.float32) / 255.0 for i in held])
    x = torch.from_numpy((x - meta["mean"][0]) / meta["std"][0])[:, None].expand(-1, 3, -1, -1)
    with torch.no_grad():
        predicted = _shipped_model()(x).argmax(1).numpy()
    assert len(held) > 250
    assert (predicted == labels[held]).mean() > 0.95


def test_training_is_deterministic():
    state_a, meta_a = train_source(epochs=1, log=lambda _: None)
    state_b, meta_b = train_source(epochs=1, log=lambda _: None)
    assert meta_a == meta_b
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    shipped = load_meta()
    assert (meta_a["mean"], meta_a["std"], meta_a["train_indices"]) == (
        shipped["mean"], shipped["std"], shipped["train_indices"])
