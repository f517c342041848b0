"""Features per cut point: one pass over a real model and real images, the checklist's blocks as the cut points."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
import torch

from engine.advice import depth
from engine.advice.depth import global_pool, linear_probe, measure, reduced, stratified
from engine.data import Sample
from engine.errors import ProjectError


def test_one_pass_scores_each_cut_point_of_the_checklist(project_factory):
    p = project_factory(model__weights="pretrained", per_class=10)
    m = measure(p)
    assert [d.trained for d in m.depths] == [0, 1, 2, 3]
    assert [d.after for d in m.depths] == ["block3", "block2", "block1", "stem"]  # the demo CNN's blocks
    assert [d.dims for d in m.depths] == [512, 32, 16, 8]  # the head's input, then pooled block outputs
    assert m.blocks == 4 and m.classes == ["circle", "square", "triangle"]
    assert m.scored == sum(m.train_counts) == 24 and m.held_out == 6
    assert all(np.isfinite(d.logme) and 0 <= d.probe <= 1 for d in m.depths)
    # the pretrained weights are the shipped source: its own head gives LEEP and NCE, and the shuffled baseline
    assert m.leep is not None and m.nce is not None and m.nce_shuffled is not None
    assert m.leep <= 0 and m.nce <= 0
    assert m.seconds > 0


def test_a_torchvision_model_is_cut_at_its_checklist_blocks(project_factory):
    """resnet18 with planted "pretrained" weights (random, in the test's torch hub cache): the cut points are the
    checklist's blocks, the source's ImageNet head gives LEEP and NCE."""
    from engine.model import zoo

    target = zoo.checkpoints_dir() / zoo.arch_info("resnet18").weights_file
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(zoo.build_model("resnet18").state_dict(), target)
    m = measure(project_factory(model__arch="resnet18", model__weights="pretrained", per_class=10))
    assert [(d.after, d.dims) for d in m.depths] == [("layer4", 512), ("layer3", 256), ("layer2", 128),
                                                     ("layer1", 64)]
    assert m.blocks == 5 and m.leep is not None  # conv1, layer1..layer4


def test_random_weights_have_nothing_to_measure(project_factory):
    with pytest.raises(ProjectError, match="random weights"):
        measure(project_factory())


def test_a_stop_ends_it(project_factory):
    stop = threading.Event()
    stop.set()
    with pytest.raises(InterruptedError):
        measure(project_factory(model__weights="pretrained"), stop=stop)


def test_a_weights_file_has_no_known_source_classes(project_factory, tmp_path):
    from safetensors.torch import save_file

    from engine.model.zoo import build_model

    model = build_model("thaw_digits_cnn", "pretrained")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "mine.safetensors"))
    m = measure(project_factory(model__weights=str(tmp_path / "mine.safetensors")))
    assert m.leep is None and "weights file" in m.source_note


def test_stratified_subsample_keeps_the_class_shares_and_repeats_with_the_seed():
    samples = [Sample(f"{c}/{i}.png", c) for c in range(3) for i in range((c + 1) * 100)]  # 100, 200, 300
    got = stratified(samples, 60, seed=1)
    assert Counter(s.label for s in got) == {0: 10, 1: 20, 2: 30}
    assert got == stratified(samples, 60, seed=1) and got != stratified(samples, 60, seed=2)
    assert stratified(samples[:50], 60, seed=1) == samples[:50]


def test_global_pool_reads_channels_first_channels_last_and_tokens():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    assert global_pool(x).shape == (2, 3)
    torch.testing.assert_close(global_pool(x.permute(0, 2, 3, 1)), global_pool(x))  # Swin's [N, H, W, C]
    assert global_pool(torch.ones(2, 7, 5)).shape == (2, 5)  # ViT's tokens


def test_features_wider_than_half_the_images_are_reduced_to_principal_components():
    f = np.random.default_rng(0).normal(size=(20, 50))
    centred = f - f.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(reduced(f)), np.abs(centred @ vt[:10].T), atol=1e-9)  # up to signs
    assert reduced(f[:, :8]).shape == (20, 8)


def test_the_probe_on_wide_features_predicts_as_a_fit_on_all_dimensions():
    """In the basis of the training rows' span the L2-penalised logistic regression is the same function."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    y, yt = np.arange(40) % 4, np.arange(200) % 4
    centres = rng.normal(size=(4, 300))
    x, t = centres[y] + 8 * rng.normal(size=(40, 300)), centres[yt] + 8 * rng.normal(size=(200, 300))
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = LogisticRegression(max_iter=10_000, tol=1e-12).fit((x - mean) / std, y)
    expected = float((full.predict((t - mean) / std) == yt).mean())
    assert 0.3 < expected < 0.9 and linear_probe(x, y, t, yt) == pytest.approx(expected, abs=0.011)


def test_the_subsample_is_capped(project_factory, monkeypatch):
    monkeypatch.setattr(depth, "MAX_SCORED", 9)
    m = measure(project_factory(model__weights="pretrained", per_class=10))
    assert m.scored == 9 and sum(m.train_counts) == 24
