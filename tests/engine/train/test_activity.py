"""Which layers are learning: per block, the gradient norm and ||dW|| / ||W|| of a step, exact against plain SGD and
torch's own total norm; frozen blocks report exactly 0; in a run, every N steps, into activity.csv."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from engine import events as ev
from engine.model.checklist import Checklist, plan_for
from engine.model.digits_cnn import DigitsCNN
from engine.model.freezing import apply_plan
from engine.model.schedule import Lanes, preset
from engine.runs import folder as run
from engine.runs.activity_file import FILENAME
from engine.train.activity import Activity


def step(model, activity, optimizer, lr_seed=0):
    torch.manual_seed(lr_seed)
    model.train()
    x, y = torch.randn(4, 3, 32, 32, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    activity.before(optimizer)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    return activity.after(1, 1), grads


def frozen_demo():
    torch.manual_seed(0)
    model = DigitsCNN(3).double()
    apply_plan(model, plan_for(model, "last_blocks", 2, head_paths=["fc"]), ["fc"])
    return model, Lanes(Checklist(model, ["fc"]))


def test_plain_sgd_moves_each_block_by_lr_times_its_gradient_norm():
    model, lanes = frozen_demo()
    lr = 0.05
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)  # no momentum, no decay
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    e, grads = step(model, Activity(model, lanes, every=1), optimizer)
    assert e.blocks == ("stem", "block1", "block2", "block3", "head")
    assert e.trained == (False, False, True, True, True)
    for k, block in enumerate(e.blocks):
        names = [n for n, _ in model.named_parameters() if lanes.of(n) == k]
        if not e.trained[k]:
            assert e.grad_norms[k] == 0.0 and e.update_ratios[k] == 0.0  # exactly
            continue
        total = torch.nn.utils.get_total_norm([grads[n] for n in names]).item()
        assert e.grad_norms[k] == pytest.approx(total, rel=1e-6), block
        weight = torch.nn.utils.get_total_norm([weights[n] for n in names]).item()
        assert e.update_ratios[k] * weight == pytest.approx(lr * total, rel=1e-6), block
    assert e.changed_frozen == ()


def test_a_frozen_block_that_changes_is_reported():
    model, lanes = frozen_demo()
    activity = Activity(model, lanes, every=1)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    model(torch.randn(2, 3, 32, 32, dtype=torch.float64)).sum().backward()
    activity.before(optimizer)
    optimizer.step()
    with torch.no_grad():
        model.block1[0].weight.mul_(1.001)  # as a freeze bug would
    e = activity.after(7, 2)
    assert e.changed_frozen == ("block1",) and e.update_ratios[1] > 0 and e.grad_norms[1] == 0.0
    assert (e.global_step, e.epoch) == (7, 2)


def test_the_interval_and_its_budget():
    model, lanes = frozen_demo()
    fixed = Activity(model, lanes, every=50)
    assert [s for s in range(1, 201) if fixed.due(s)] == [50, 100, 150, 200]
    assert not any(Activity(model, lanes, every=0).due(s) for s in range(1, 10))
    stretched = Activity(model, lanes, every=2, budget=1e-9)  # any cost is over such a budget
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    for _ in range(3):
        step(model, stretched, optimizer)
    assert stretched.every == 8  # doubled after the 2nd and 3rd measurements


def test_a_run_reports_every_n_steps_and_blocks_unfrozen_later_appear(tmp_path, project_factory):
    p = project_factory(train__epochs=3, per_class=12, freeze__preset="feature_extraction",
                        train__activity_every=2, train__activity_budget=0.0)
    for key, value in preset("gradual", Checklist(DigitsCNN(3), ["fc"]), 3).items():
        p.set(f"freeze.{key}", value)
    seen: list[ev.LayerActivity] = []
    steps: list[int] = []

    def keep(e):
        if isinstance(e, ev.LayerActivity):
            seen.append(e)
        elif isinstance(e, ev.BatchEnded):
            steps.append(e.global_step)

    folder, result = run.train(p, tmp_path / "r", callbacks=[keep])
    assert [e.global_step for e in seen] == [s for s in steps if s % 2 == 0]
    assert len(seen) == len(steps) // 2
    first_epoch = [e for e in seen if e.epoch == 1]
    assert all(e.trained == (False, False, False, False, True) for e in first_epoch)
    assert all(r == 0.0 for e in first_epoch for r in e.update_ratios[:4])
    later = [e for e in seen if e.epoch == 2][0]
    assert later.trained[3] and later.update_ratios[3] > 0 and later.grad_norms[3] > 0
    assert all(e.changed_frozen == () for e in seen)
    with (folder / FILENAME).open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 * len(seen)
    assert rows[0]["block"] == "stem" and rows[4]["block"] == "head" and rows[3]["trained"] == "0"
    assert float(rows[4]["update_ratio"]) == pytest.approx(seen[0].update_ratios[4], rel=1e-5)
