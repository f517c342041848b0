"""The transferability scores against golden values from the thuml reference code (wave2 notes, section 7), and
the properties any such score must have."""

from __future__ import annotations

import numpy as np
import pytest

from engine.advice.scores import h_score, leep, logme, nce


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def synthetic():
    """The notes' synthetic set, drawn in their order."""
    rng = np.random.default_rng(0)
    n, d, c, cs = 600, 64, 5, 20
    y = np.arange(n) % c
    centers = rng.normal(size=(c, d))
    f_good = centers[y] + rng.normal(size=(n, d))
    f_bad = rng.normal(size=(n, d))
    w = rng.normal(size=(d, cs))
    p = softmax(f_good @ w / 8)
    return {"y": y, "good": f_good, "bad": f_bad, "p": p, "p_bad": softmax(f_bad @ w / 8)}


def test_golden_values(synthetic):
    s = synthetic
    assert logme(s["good"], s["y"]) == pytest.approx(0.5599400307, abs=1e-6)
    assert logme(s["bad"], s["y"]) == pytest.approx(-0.6139602426, abs=1e-6)
    assert leep(s["p"], s["y"]) == pytest.approx(-1.1016478790, abs=1e-6)
    assert nce(s["p"].argmax(1), s["y"]) == pytest.approx(-0.7392661833, abs=1e-6)
    assert h_score(s["good"], s["y"]) == pytest.approx(3.7554045324, abs=1e-6)
    assert h_score(s["bad"], s["y"]) == pytest.approx(0.3745555447, abs=1e-6)


def test_a_source_that_knows_nothing_scores_chance(synthetic):
    y = synthetic["y"]
    assert leep(np.full((len(y), 20), 1 / 20), y) == pytest.approx(np.log(1 / 5), abs=1e-12)
    assert nce(np.zeros(len(y), dtype=int), y) == pytest.approx(-np.log(5), abs=1e-12)


def test_fewer_samples_than_dimensions_take_the_direct_svd(synthetic):
    f, y = synthetic["good"][:40], synthetic["y"][:40]  # 40 < 64: the other branch of LogME
    wide = np.hstack([f, f @ np.random.default_rng(1).normal(size=(64, 64))])
    assert np.isfinite(logme(f, y)) and np.isfinite(logme(wide, y))


@pytest.mark.parametrize("score", ["logme", "h_score", "leep", "nce"])
def test_unchanged_by_shuffling_samples_and_renaming_classes(synthetic, score):
    s = synthetic
    rng = np.random.default_rng(7)
    order = rng.permutation(len(s["y"]))
    rename = rng.permutation(5)
    fn = {"logme": lambda f, p, y: logme(f, y), "h_score": lambda f, p, y: h_score(f, y),
          "leep": lambda f, p, y: leep(p, y), "nce": lambda f, p, y: nce(p.argmax(1), y)}[score]
    before = fn(s["good"], s["p"], s["y"])
    after = fn(s["good"][order], s["p"][order], rename[s["y"][order]])
    assert after == pytest.approx(before, abs=1e-9)


def test_informative_features_score_above_noise(synthetic):
    s = synthetic
    assert logme(s["good"], s["y"]) > logme(s["bad"], s["y"])
    assert h_score(s["good"], s["y"]) > h_score(s["bad"], s["y"])
    assert leep(s["p"], s["y"]) > leep(s["p_bad"], s["y"])
    assert nce(s["p"].argmax(1), s["y"]) > nce(s["p_bad"].argmax(1), s["y"])
