"""The advisor's rule (docs/advisor.md) on synthetic measurements that must go each way."""

from __future__ import annotations

import pytest

from engine.advice.depth import Depth, Measured
from engine.advice.rule import advise, plan, recommend, task_share


def measured(probes=(0.9, 0.7, 0.6, 0.5), logmes=(-0.3, -0.5, -0.6, -0.7), per_class=10, nce=None,
             nce_shuffled=-1.4, blocks=4) -> Measured:
    depths = [Depth(i, f"block{blocks - i}", 64, logme, 1.0, probe)
              for i, (probe, logme) in enumerate(zip(probes, logmes, strict=True))]
    m = Measured(depths=depths, blocks=blocks, classes=list("abcde"), train_counts=[per_class] * 5,
                 scored=5 * per_class, held_out=50)
    if nce is not None:
        m.nce, m.nce_shuffled, m.leep, m.leep_shuffled = nce, nce_shuffled, nce - 0.1, nce_shuffled - 0.1
    else:
        m.source_note = "the source head's classes are not known for these weights"
    return m


def test_close_task_little_data_extracts_features():
    advice = recommend(measured(nce=-0.05))
    assert (advice.plan.preset, advice.plan.lr) == ("feature_extraction", 0.01)
    assert advice.task_share == pytest.approx(1 - 0.05 / 1.4)
    assert any("close to the source's task" in line for line in advice.evidence)


def test_unknown_task_little_data_extracts_features_and_says_what_was_not_measured():
    advice = recommend(measured())
    assert advice.plan.preset == "feature_extraction"
    assert any("not measured" in line for line in advice.evidence)


def test_new_task_trains_the_last_block():
    advice = recommend(measured(nce=-1.2))
    assert (advice.plan.preset, advice.plan.last_blocks) == ("last_blocks", 1)
    assert (advice.plan.lr, advice.plan.backbone_lr_mult) == (0.003, 1.0)
    assert any("a new task" in line for line in advice.evidence)


def test_new_task_with_more_data_trains_two_blocks():
    advice = recommend(measured(nce=-1.2, per_class=300))
    assert (advice.plan.preset, advice.plan.last_blocks) == ("last_blocks", 2)


def test_a_deeper_cut_that_fits_better_unfreezes_the_blocks_above_it():
    advice = recommend(measured(probes=(0.70, 0.72, 0.85, 0.6), logmes=(-0.6, -0.5, -0.4, -0.7), nce=-0.05))
    assert (advice.plan.preset, advice.plan.last_blocks) == ("last_blocks", 2)
    assert any("specific to the source" in line and "85% vs 70%" in line for line in advice.evidence)


def test_a_deeper_cut_needs_both_the_probe_and_logme():
    probe_only = recommend(measured(probes=(0.70, 0.80, 0.6, 0.5), logmes=(-0.3, -0.5, -0.6, -0.7)))
    within_margin = recommend(measured(probes=(0.70, 0.72, 0.6, 0.5), logmes=(-0.6, -0.5, -0.6, -0.7)))
    assert probe_only.plan.preset == within_margin.plan.preset == "feature_extraction"


def test_plenty_of_data_fine_tunes_everything_gently():
    advice = recommend(measured(per_class=1500, nce=-0.05))
    assert (advice.plan.preset, advice.plan.lr, advice.plan.backbone_lr_mult) == ("full", 0.003, 0.1)


def test_a_fair_amount_of_data_on_a_close_task_trains_the_last_block():
    advice = recommend(measured(per_class=300, nce=-0.05))
    assert (advice.plan.preset, advice.plan.last_blocks) == ("last_blocks", 1)


def test_the_task_share_is_unknown_when_shuffled_labels_are_explained_as_well():
    assert task_share(measured(nce=-0.01, nce_shuffled=-0.02)) is None
    assert task_share(measured(nce=-1.6, nce_shuffled=-1.4)) == 0.0


def test_plans_and_their_learning_rates():
    assert plan("last_blocks", 4, blocks=4).preset == "full"
    assert plan("last_blocks", 0, blocks=4).preset == "feature_extraction"
    assert plan("last_blocks", 3, blocks=5).backbone_lr_mult == 0.1
    assert plan("feature_extraction", optimizer="sgd").lr == pytest.approx(0.1)
    scratch = plan("full", scratch=True)
    assert "model.weights=none" in scratch.overrides() and scratch.label == "from scratch"
    assert plan("last_blocks", 2, 4).sections() == {"freeze": {"preset": "last_blocks", "last_blocks": 2},
                                                   "train": {"lr": 0.003, "backbone_lr_mult": 1.0}}
    assert "train.backbone_lr_mult=1.0" not in plan("feature_extraction").overrides()


def test_a_model_without_pretrained_weights_is_trained_whole(project_factory):
    advice = advise(project_factory())  # random weights: nothing is measured
    assert advice.measured is None and advice.plan.preset == "full"
    assert "random weights" in advice.evidence[0]
