"""The feature store: a frozen backbone's features computed once across runs, the same training as without it."""

from __future__ import annotations

import pytest

from engine import project as proj
from engine.train.feature_cache import FeatureStore
from engine.train.loop import fit


def test_a_second_run_takes_every_image_from_the_store_and_trains_the_same(project_factory):
    p = project_factory(model__weights="pretrained", freeze__preset="feature_extraction", train__epochs=2)
    store = FeatureStore()
    first = fit(p, feature_cache=store)
    assert first.summary["feature_cache"] and store.reused == 0
    again = fit(proj.apply_overrides(p, ["train.lr=0.02"]), feature_cache=store)
    images = again.summary["train_size"] + again.summary["val_size"]
    assert store.reused == images
    plain = fit(proj.apply_overrides(p, ["train.lr=0.02"]))
    for a, b in zip(again.history, plain.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        assert a.val_accuracy == b.val_accuracy


def test_another_backbone_or_image_size_starts_afresh(project_factory):
    p = project_factory(model__weights="pretrained", freeze__preset="feature_extraction", train__epochs=1)
    store = FeatureStore()
    fit(p, feature_cache=store)
    fit(proj.apply_overrides(p, ["model.weights=none"]), feature_cache=store)  # other tensors
    fit(proj.apply_overrides(p, ["data.image_size=40"]), feature_cache=store)  # other preprocessing
    assert store.reused == 0


def test_a_larger_set_computes_only_the_images_the_store_lacks(project_factory, tmp_path):
    p = project_factory(model__weights="pretrained", freeze__preset="feature_extraction", train__epochs=1)
    half = sorted((tmp_path / "train").rglob("*.png"))[::2]
    (tmp_path / "half.csv").write_text("".join(f"{f},{f.parent.name}\n" for f in half))
    store = FeatureStore()
    fit(proj.apply_overrides(p, ["data.train=half.csv"]), feature_cache=store)
    fit(p, feature_cache=store)
    assert store.reused == len(half) < 24
