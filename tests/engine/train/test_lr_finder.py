"""The learning-rate finder: fastai's suggestions on the notes' synthetic curve, the exponential sweep, stopping
at divergence or NaN, and no trace left (training after it is bit-identical); the CLI."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from engine import project as proj
from engine.cli import main
from engine.train import loop as training
from engine.train.lr_finder import ended_by, find_lr, smooth, suggest, sweep

GOLDEN = {"valley": 1.584893e-4, "steepest": 4.786301e-4, "minimum": 8.317638e-3, "slide": 3.981072e-4}


def synthetic():
    """101 points from 1e-7 to 10: a loss that falls around 1e-4 and climbs again above 10^-1.5."""
    lrs = [1e-7 * 1e8 ** (i / 100) for i in range(101)]
    raw = [2.3 - 1.5 / (1 + math.exp(-2 * (u + 4))) + (3 * (u + 1.5) ** 2 if u >= -1.5 else 0.0)
           for u in map(math.log10, lrs)]
    return lrs, raw


def test_suggestions_on_the_synthetic_curve():
    lrs, raw = synthetic()
    found, points = suggest(lrs, smooth(raw), 100)
    assert points == 86  # [10:-5] of 101
    for name, value in GOLDEN.items():
        assert found[name] == pytest.approx(value, rel=1e-6), name
    assert found["steepest"] == pytest.approx(4.786300923226385e-4, rel=1e-9)  # slopes against log(lr)
    lin = np.asarray(smooth(raw))[10:-5]
    wrong = lrs[10:-5][int(np.argmin(np.gradient(lin, lrs[10:-5])))]  # against plain lr: Lightning#21141
    assert wrong < 1e-6 < found["steepest"]


def test_nan_truncates_the_window_and_too_few_points_suggest_nothing():
    lrs, raw = synthetic()
    smoothed = smooth(raw)
    smoothed[50] = math.nan
    found, points = suggest(lrs, smoothed, 100)
    assert points == 40 and all(v is not None and v < lrs[50] for v in found.values())
    smoothed[11] = math.nan
    assert suggest(lrs, smoothed, 100) == (dict.fromkeys(GOLDEN), 1)


def test_a_loss_that_explodes_at_1e_2_ends_the_sweep_before_1e_1():
    lrs = [1e-7 * 1e8 ** (i / 100) for i in range(100)]
    losses, ended = [], None
    for lr in lrs:
        losses.append(1.0 if lr < 1e-2 else 1.0 + 50 * (math.log10(lr) + 2))
        ended = ended_by(smooth(losses))
        if ended:
            break
    assert ended == "diverged" and lrs[len(losses) - 1] < 1e-1
    assert suggest(lrs[: len(losses)], smooth(losses), 100)[0]["valley"] < 1e-2
    assert ended_by([1.0, 0.9, math.nan]) == "not a number"


def _fit(project):
    f = training._Fit(project, (), None, "", allow_cache=True)
    f.setup()
    return f


def test_the_sweep_is_exponential_and_leaves_no_trace(project_factory):
    p = project_factory(train__epochs=2, train__optimizer="sgd", train__scheduler="onecycle",
                        head__kind="mlp", head__hidden=[16], head__dropout=0.3, data__augment="light")
    plain = training.fit(p).model.state_dict()

    f = _fit(p)
    try:
        before = {k: v.clone() for k, v in f.state.model.state_dict().items()}
        optimizer = json.dumps(str(f.state.optimizer.state_dict()))
        rng, py_rng = torch.get_rng_state(), random.getstate()
        groups = [dict(g, params=None) for g in f.state.optimizer.param_groups]
        first = sweep(f, steps=30)
        assert all(torch.equal(before[k], v) for k, v in f.state.model.state_dict().items())
        assert json.dumps(str(f.state.optimizer.state_dict())) == optimizer
        assert torch.equal(torch.get_rng_state(), rng) and random.getstate() == py_rng
        assert [dict(g, params=None) for g in f.state.optimizer.param_groups] == groups
        assert all(lr == pytest.approx(1e-7 * 1e8 ** (i / 30), rel=1e-12) for i, lr in enumerate(first.lrs))
        again = sweep(f, steps=30)  # twice in a row: the same sweep
        assert again.losses == first.losses and again.suggestions == first.suggestions
        after = f.run().model.state_dict()
    finally:
        f.close()
    assert all(torch.equal(plain[k], after[k]) for k in plain)  # training after it is bit-identical (fastai#3013)


def test_a_big_rate_diverges_early_and_a_frozen_backbone_sweeps_cached_features(project_factory):
    p = project_factory(train__epochs=1)
    training.fit(p)  # after a run it works as well (fastai#3658)
    wild = find_lr(p, start=1e-4, end=1e4, steps=60)
    assert wild.ended == "diverged" and len(wild.lrs) < 60 and not wild.feature_cache
    assert wild.suggestions["valley"] < wild.lrs[-1]
    cached = find_lr(project_factory(freeze__preset="feature_extraction", data__augment="light"), steps=20)
    assert cached.feature_cache and cached.ended in ("done", "diverged") and "augmentation" in cached.notes[0]
    assert cached.points < 20 and any("points" in n for n in cached.notes)


def test_cli_lr_find(tmp_path, capsys, project_factory):
    path = tmp_path / "p.thaw.toml"
    proj.save(project_factory(freeze__preset="feature_extraction"), path)
    assert main(["lr-find", str(path), "--steps", "40", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["lrs"]) == len(out["losses"]) <= 40 and set(out["suggestions"]) == set(GOLDEN)
    assert out["feature_cache"] is True
    assert main(["lr-find", str(path), "--steps", "40"]) == 0
    text = capsys.readouterr().out
    assert "valley" in text and "--set train.lr=" in text
    assert main(["lr-find", str(path), "--start", "1", "--end", "0.1"]) == 2
    assert main(["lr-find", str(tmp_path / "missing.thaw.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
