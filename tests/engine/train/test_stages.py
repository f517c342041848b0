"""A schedule in a real run: the optimizer's groups after each transition, frozen BatchNorm, the frozen-tensor
check per span, resuming mid-schedule bit-exactly, and the run's learning-rate curves (torch's, in closed form)."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torchvision.models import resnet18

from engine import events as ev
from engine.model.checklist import Checklist
from engine.model.digits_cnn import DigitsCNN
from engine.model.freezing import apply_plan
from engine.model.heads import HeadSpec, replace_head
from engine.model.schedule import Lanes, Schedule, preset
from engine.project import Project
from engine.runs import checkpoint
from engine.runs import folder as run
from engine.train import loop as training
from engine.train.optim import RateCurve
from engine.train.stages import SpanCheck, Staging, apply_stage, groups_for


def scheduled(project_factory, name: str, epochs: int = 4, **options):
    p = project_factory(train__epochs=epochs, per_class=12, freeze__preset="feature_extraction")
    c = Checklist(DigitsCNN(3), ["fc"])
    for key, value in preset(name, c, epochs, **options).items():
        p.set(f"freeze.{key}", value)
    return p


def test_after_each_transition_the_groups_hold_exactly_the_trainable_parameters(project_factory, monkeypatch):
    p = scheduled(project_factory, "gradual")
    seen = []
    original = training._Fit.apply_stage

    def checked(self, plan):
        original(self, plan)
        opt, model = self.state.optimizer, self.state.model
        params = [q for g in opt.param_groups for q in g["params"]]
        assert len(params) == len({id(q) for q in params})  # no parameter in two groups
        assert {id(q) for q in params} == {id(q) for q in model.parameters() if q.requires_grad}
        assert set(map(id, opt.state)) <= {id(q) for q in params}
        for g in opt.param_groups:
            lane = dict(plan.groups)[g["name"]][0]
            assert g["base_lr"] == pytest.approx(plan.rates[lane], rel=1e-12)
            assert g["lr"] == pytest.approx(self.state.scheduler.lr(g["base_lr"], self.state.scheduler.last_epoch))
        seen.append((plan.stage, [g["name"] for g in opt.param_groups],
                     sum(q.numel() for q in params), sum(q.numel() for q in model.parameters() if q.requires_grad)))

    monkeypatch.setattr(training._Fit, "apply_stage", checked)
    result = training.fit(p)
    assert [s[:2] for s in seen] == [(1, ["head", "block3"]), (2, ["head", "block2", "block3"]),
                                     (3, ["head", "block1", "block2", "block3"])]
    assert all(a == b for *_, a, b in seen) and seen[0][2] < seen[-1][2]
    assert result.summary["frozen_verified"] and not result.summary["feature_cache"]


def test_without_a_schedule_the_groups_are_the_head_and_the_trainable_backbone():
    model = resnet18()
    heads = replace_head(model, HeadSpec(kind="mlp", hidden=(16,)), 4)
    p = Project()
    p.set("freeze.preset", "last_blocks")
    p.set("freeze.last_blocks", 2)
    p.set("train.lr", 0.01)
    s = Schedule.of_project(Checklist(model, heads), p)
    apply_plan(model, s.plan_at(0).plan, heads)
    groups = groups_for(model, s.plan_at(0), s.lanes, 0.0)
    assert [g["name"] for g in groups] == ["head", "backbone"]
    assert groups[0]["lr"] == 0.01 and groups[1]["lr"] == pytest.approx(0.001)
    ids = {id(q) for g in groups for q in g["params"]}
    by_name = dict(model.named_parameters())
    assert ids == {id(q) for q in by_name.values() if q.requires_grad}
    assert id(by_name["layer2.0.conv1.weight"]) not in ids and id(by_name["layer3.0.conv1.weight"]) in ids
    assert [id(q) for q in groups[0]["params"]] == [id(q) for q in model.fc.parameters()]


def test_frozen_blocks_batchnorm_normalises_with_its_running_statistics(project_factory):
    model = DigitsCNN(3)
    p = scheduled(project_factory, "gradual")
    staging = Staging(model, p, ["fc"], 1, lambda *_: None)  # epoch 2: block3 trains, the rest is frozen
    assert [n for n, r in zip(staging.plan.lanes, staging.plan.rates, strict=True) if r] == ["block3", "head"]
    frozen_bn, trained_bn = model.block1[1], model.block3[1]
    stats = frozen_bn.running_mean.clone()
    seen = {}
    def keep(name):
        def hook(_module, args, out):
            seen[name] = (args[0].clone(), out.clone())
        return hook

    frozen_bn.register_forward_hook(keep("frozen"))
    trained_bn.register_forward_hook(keep("trained"))
    model.train()
    model(torch.randn(6, 3, 32, 32) * 3 + 2)
    x, out = seen["frozen"]
    assert torch.equal(out, copy.deepcopy(frozen_bn).eval()(x))  # not batch statistics (Lightning#15062)
    assert torch.equal(frozen_bn.running_mean, stats)
    x, out = seen["trained"]
    assert not torch.allclose(out, copy.deepcopy(trained_bn).eval()(x))


def test_the_frozen_check_covers_each_span():
    model = DigitsCNN(3)
    p = Project()
    p.set("freeze.preset", "feature_extraction")
    p.set("freeze.stages", [{"start": 2, "unfreeze": 1}])
    s = Schedule.of_project(Checklist(model, ["fc"]), p)
    spans = SpanCheck(model, s.plan_at(0), ["fc"], 0)
    assert spans.end(2).ok
    spans.begin(s.plan_at(2), 2)
    with torch.no_grad():
        model.block3[0].weight.add_(1.0)  # trains from epoch 3: not checked any more
        model.stem[1].running_var.mul_(2.0)  # still frozen: a change is a bug
    check = spans.end(4)
    assert not check.ok and check.changed == ["stem.1.running_var"]
    assert [(a, b, c.ok) for a, b, c in spans.checks] == [(1, 2, True), (3, 4, False)]
    assert spans.total().checked == spans.checks[0][2].checked + check.checked


def test_a_transition_keeps_the_state_of_parameters_that_go_on_training():
    model = DigitsCNN(3)
    p = Project()
    p.set("train.lr", 0.01)
    p.set("freeze.preset", "last_blocks")
    p.set("freeze.stages", [{"start": 1, "unfreeze": 1, "layer_decay": 0.5}, {"start": 2, "frozen": ["stem"]}])
    s = Schedule.of_project(Checklist(model, ["fc"]), p)
    lanes = Lanes(Checklist(model, ["fc"]))
    apply_plan(model, s.plan_at(0).plan, ["fc"])
    opt = torch.optim.AdamW(groups_for(model, s.plan_at(0), lanes, 0.0))
    curve = RateCurve("none", opt, 10)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    moments = opt.state[model.block3[0].weight]["exp_avg"].clone()
    apply_stage(model, opt, curve, s.plan_at(1), lanes, ["fc"], 0.0)
    assert [g["name"] for g in opt.param_groups] == ["head", "block2", "block3"]
    assert torch.equal(opt.state[model.block3[0].weight]["exp_avg"], moments)
    assert model.block2[0].weight not in opt.state  # unfrozen now: no state yet
    apply_stage(model, opt, curve, s.plan_at(2), lanes, ["fc"], 0.0)
    assert not model.stem[0].weight.requires_grad and model.block1[0].weight.requires_grad
    assert opt.param_groups[-1]["lr"] == pytest.approx(0.01 * 0.1)


def _stop_after(n: int, stop: threading.Event):
    def callback(e):
        if isinstance(e, ev.EpochEnded) and e.epoch == n:
            stop.set()
    return callback


@pytest.mark.parametrize(("name", "options", "stop_at"), [("gradual", {}, 2), ("backbone", {"unfreeze_at": 1}, 2)])
def test_resuming_mid_schedule_is_bit_exact(tmp_path, project_factory, name, options, stop_at):
    p = scheduled(project_factory, name, epochs=4, **options)
    p.set("train.scheduler", "onecycle")
    straight, whole = run.train(p, tmp_path / "straight")
    stop = threading.Event()
    parted, first = run.train(p, tmp_path / "parted", callbacks=[_stop_after(stop_at, stop)], stop=stop)
    assert first.summary["epochs_completed"] == stop_at
    torch.manual_seed(999)
    _, resumed = run.resume(p, parted)
    a, b = load_file(straight / "model.safetensors"), load_file(parted / "model.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert [(e.train_loss, e.val_loss, e.lr) for e in whole.history] == [
        (e.train_loss, e.val_loss, e.lr) for e in resumed.history]
    assert resumed.summary["frozen_verified"] and not (parted / checkpoint.FILENAME).exists()


def test_a_checkpoint_holds_the_groups_of_the_stage_it_continues_with(tmp_path, project_factory):
    p = scheduled(project_factory, "gradual", epochs=3)
    stop = threading.Event()
    folder, _ = run.train(p, tmp_path / "r", callbacks=[_stop_after(1, stop)], stop=stop)
    groups = checkpoint.read(Path(folder)).meta["optimizer"]["param_groups"]
    assert [g["name"] for g in groups] == ["head", "block3"]  # stage 1 begins with epoch 2


@pytest.mark.parametrize("kind", ["cosine", "onecycle", "step", "none"])
@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_the_rate_curves_are_torchs(kind, optimizer):
    def make():
        ps = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
        groups = [{"params": [ps[0]], "lr": 1e-3}, {"params": [ps[1]], "lr": 1e-4}]
        if optimizer == "sgd":
            return torch.optim.SGD(groups, lr=1e-3, momentum=0.9, nesterov=True)
        return torch.optim.AdamW(groups, lr=1e-3)

    theirs, ours = make(), make()
    for g in ours.param_groups:
        g["base_lr"] = g["lr"]
    total = 37
    reference = {"cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total),
                 "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=[1e-3, 1e-4], total_steps=total),
                 "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=total // 3, gamma=0.1),
                 "none": lambda o: None}[kind](theirs)
    curve = RateCurve(kind, ours, total)
    for _ in range(total):
        for a, b in zip(theirs.param_groups, ours.param_groups, strict=True):
            assert b["lr"] == pytest.approx(a["lr"], rel=1e-12)
            key = "betas" if optimizer == "adamw" else "momentum"
            assert b[key] == pytest.approx(a[key], rel=1e-12)
        theirs.step()
        ours.step()
        if reference is not None:
            reference.step()
        curve.step()
    assert curve.state_dict() == {"last_epoch": total}
