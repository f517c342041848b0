"""Unfreezing schedules as data: `plan_at` gives each epoch's plan and each block's rate, the presets give the
anchors' numbers (Lightning's BackboneFinetuning, fastai's fine_tune, ULMFiT, timm's layer decay)."""

import pytest
from torch import nn

from engine.errors import ProjectError
from engine.model.checklist import FROZEN, HEAD, PARTLY, TRAINABLE, Checklist, plan_for
from engine.model.digits_cnn import DigitsCNN
from engine.model.schedule import Lanes, Schedule, moved, preset, start_range
from engine.project import Project


class TwoBlocks(nn.Module):
    """Two blocks and a head: three groups, as in fastai's fine_tune example."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)),
                                  nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)))
        self.fc = nn.Linear(4, 2)


def demo():
    return Checklist(DigitsCNN(3), ["fc"])


def project(epochs=8, lr=1e-3, **freeze):
    p = Project()
    p.set("train.epochs", epochs)
    p.set("train.lr", lr)
    for key, value in freeze.items():
        p.set(f"freeze.{key}", value)
    return p


def with_preset(p, checklist, name, **options):
    for key, value in preset(name, checklist, p.train.epochs, **options).items():
        p.set(f"freeze.{key}", value)
    return Schedule.of_project(checklist, p, strict=True)


def test_lanes_are_the_blocks_input_to_output_then_the_head():
    c = demo()
    lanes = Lanes(c)
    assert lanes.names == ("stem", "block1", "block2", "block3", "head") and lanes.paths[-1] == "fc"
    assert lanes.of("stem.0.weight") == 0 and lanes.of("block3.1.running_mean") == 3 and lanes.of("fc.bias") == 4


def test_lightning_backbone_finetuning_numbers():
    c = demo()
    s = with_preset(project(epochs=8, lr=1e-3), c, "backbone", unfreeze_at=2)
    expected = [None, None, 1e-4, 2e-4, 4e-4, 8e-4, 1e-3, 1e-3]
    for lane in ("stem", "block1", "block2", "block3"):
        got = [s.plan_at(e).rate(lane) for e in range(8)]
        assert [g is None for g in got] == [x is None for x in expected]
        assert all(g == pytest.approx(x, rel=1e-12) for g, x in zip(got, expected, strict=True) if x is not None)
    assert [s.plan_at(e).rate("head") for e in range(8)] == [1e-3] * 8
    assert [g[0] for g in s.plan_at(0).groups] == ["head"] and [g[0] for g in s.plan_at(2).groups] == ["head", "backbone"]


def test_fastai_fine_tune_numbers_with_three_groups():
    c = Checklist(TwoBlocks(), ["fc"])
    s = with_preset(project(epochs=4, lr=2e-3), c, "fine_tune", lr_mult=100, freeze_epochs=1)
    assert s.plan_at(0).rates == (None, None, 2e-3)  # the head alone at base_lr
    assert s.plan_at(1).rates == pytest.approx((1e-5, 1e-4, 1e-3), rel=1e-12)  # then base_lr / 2, log-spaced
    assert s.plan_at(3).rates == s.plan_at(1).rates
    assert [g[0] for g in s.plan_at(1).groups] == ["head", "body.0", "body.1"]


def test_ulmfit_unfreezes_one_block_an_epoch_each_a_2_6th_of_the_one_above():
    c = demo()
    s = with_preset(project(epochs=6, lr=1e-2), c, "gradual")
    assert s.starts == [0, 1, 2, 3, 4]
    assert [s.plan_at(e).states for e in (0, 1, 4)] == [
        (FROZEN, FROZEN, FROZEN, FROZEN, HEAD), (FROZEN, FROZEN, FROZEN, TRAINABLE, HEAD),
        (TRAINABLE, TRAINABLE, TRAINABLE, TRAINABLE, HEAD)]
    assert s.plan_at(4).rates == pytest.approx(tuple(1e-2 / 2.6**d for d in (4, 3, 2, 1, 0)), rel=1e-12)
    assert s.plan_at(2).plan.frozen == {"stem", "block1"}


def test_layer_decay_trains_everything_at_0_75_per_block_from_the_top():
    c = demo()
    s = with_preset(project(epochs=3, lr=1e-3), c, "layer_decay")
    assert s.starts == [0] and s.plan_at(0).plan.frozen == frozenset()
    assert s.plan_at(2).rates == pytest.approx(tuple(1e-3 * 0.75**d for d in (4, 3, 2, 1, 0)), rel=1e-12)


def test_no_schedule_is_the_plan_of_old_head_and_backbone_groups():
    model = DigitsCNN(3)
    c = Checklist(model, ["fc"])
    p = project(epochs=5, lr=0.01, preset="last_blocks", last_blocks=2)
    p.set("train.backbone_lr_mult", 0.5)
    s = Schedule.of_project(c, p)
    assert s.starts == [0] and s.head_only() is False
    plan = s.plan_at(4)
    assert plan.plan == plan_for(model, "last_blocks", 2, head_paths=["fc"])
    assert plan.rates == (None, None, 0.005, 0.005, 0.01)
    assert plan.groups == (("head", (4,)), ("backbone", (2, 3)))


def test_unfreeze_counts_from_the_lowest_trainable_block_and_frozen_is_exact():
    c = demo()
    p = project(epochs=6, preset="custom", frozen=["stem", "block1", "block2", "block3.0"])  # block3 partly
    p.set("freeze.stages", [{"start": 1, "unfreeze": 1}, {"start": 2, "frozen": ["stem"]},
                            {"start": 3, "lr_mult": 0.5}, {"start": 4, "unfreeze": 5}])
    s = Schedule.of_project(c, p, strict=True)
    assert s.plan_at(0).states[:4] == (FROZEN, FROZEN, FROZEN, PARTLY)
    assert s.plan_at(1).states[:4] == (FROZEN, FROZEN, FROZEN, TRAINABLE)  # the partly frozen block is the next
    assert s.plan_at(2).plan.frozen == {"stem"}
    assert s.plan_at(3).plan == s.plan_at(2).plan and s.plan_at(3).rate("head") == pytest.approx(5e-4)
    assert s.plan_at(3).rate("block1") == pytest.approx(5e-5)  # the rates of a stage not given: the one before's
    assert s.plan_at(5).plan.frozen == frozenset() and not s.head_only()


def test_a_stage_naming_a_layer_the_model_lacks():
    c = demo()
    p = project(preset="feature_extraction")
    p.set("freeze.stages", [{"start": 1, "frozen": ["stem", "nope"]}])
    with pytest.raises(ProjectError, match="'nope'") as caught:
        Schedule.of_project(c, p, strict=True)
    assert caught.value.key == "freeze.stages[0].frozen"
    assert Schedule.of_project(c, p).plan_at(1).plan.frozen == {"stem"}  # drawn without it


def test_the_checklist_it_reads_is_left_as_it_was():
    c = demo()
    c.apply_preset("full")
    before = c.frozen.copy()
    with_preset(project(epochs=6), c, "gradual")
    assert (c.frozen == before).all() and c.matching_preset() == ("full", None)


def test_head_only_and_the_moves_a_boundary_may_make():
    c = demo()
    s = with_preset(project(epochs=10), c, "backbone", unfreeze_at=3)
    assert not s.head_only()
    assert Schedule.of_project(c, project(preset="feature_extraction")).head_only()
    stages = [{"start": 0, "lr_mult": 1.0}, {"start": 2, "unfreeze": 1}, {"start": 5, "unfreeze": 1}]
    assert start_range(stages, 1, 10) == (1, 4) and start_range(stages, 2, 10) == (3, 9)
    assert moved(stages, 2, 7)[2]["start"] == 7 and stages[2]["start"] == 5
