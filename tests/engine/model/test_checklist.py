"""The layer checklist as engine data, headless: rows, unit flags, the edits, presets, and [freeze] settings."""

import numpy as np
import pytest
import torch
from torch import nn

from engine.errors import ProjectError
from engine.model import zoo
from engine.model.checklist import FROZEN, HEAD, PARTLY, TRAINABLE, Checklist, plan_for
from engine.model.digits_cnn import DigitsCNN
from engine.model.freezing import FreezePlan, frozen_tensors
from engine.model.heads import HeadSpec, replace_head
from engine.project import FreezeSettings


@pytest.fixture
def demo():
    return Checklist(DigitsCNN(num_classes=3), ("fc",))


def test_rows_are_the_model_in_pre_order(demo):
    assert [x.path for x in demo.infos][:3] == ["", "stem", "stem.0"]
    root = demo.index("")
    assert [demo.infos[i].path for i in demo.children[root]] == ["stem", "block1", "block2", "block3", "pool", "fc"]
    assert demo.blocks == ["stem", "block1", "block2", "block3"]


def test_unticking_a_block_freezes_everything_inside(demo):
    changed = demo.set_trainable("block2", False)
    assert demo.frozen_paths() == {"block2"}
    assert demo.state("block2.0") == FROZEN and demo.state("block2") == FROZEN and demo.state("") == PARTLY
    assert {demo.infos[i].path for i in changed} >= {"", "block2", "block2.0", "block2.1"}


def test_parents_are_tri_state_and_ticking_a_partial_parent_trains_all(demo):
    demo.set_trainable("block1.0", False)  # the conv only
    assert demo.state("block1") == PARTLY
    demo.set_trainable("block1.1", False)  # and its BatchNorm: now the whole block is frozen
    assert demo.state("block1") == FROZEN and demo.frozen_paths() == {"block1"}
    demo.set_trainable("block1", True)
    assert demo.frozen_paths() == frozenset()


def test_the_head_stays_trainable(demo):
    assert [demo.can_edit(demo.index(p)) for p in ("", "block1", "pool", "fc")] == [True, True, False, False]
    demo.set_trainable("", False)  # untick the whole model
    assert demo.state("fc") == HEAD
    assert demo.frozen_paths() == {"stem", "block1", "block2", "block3"}  # pool has no parameters
    trainable, total, frozen, layers = demo.summary()
    assert trainable == 128 * 4 * 3 + 3 and frozen == layers - 1


def test_context_edits_move_the_freeze_boundary(demo):
    demo.freeze_up_to("block2")
    assert demo.frozen_paths() == {"stem", "block1", "block2"}
    demo.unfreeze_from("block1")
    assert demo.frozen_paths() == {"stem"}
    demo.freeze_only("block3")
    assert demo.frozen_paths() == {"block3"} and demo.state("stem") == TRAINABLE


class _Embed(nn.Module):
    """A module with its own parameter *and* a child with parameters, like a ViT encoder."""

    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(4))
        self.proj = nn.Linear(4, 4)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = _Embed()
        self.fc = nn.Linear(4, 2)


def test_own_tensors_of_a_parent_are_a_unit_named_by_tensor():
    net = _Net()
    c = Checklist(net, ("fc",))
    c.set_trainable("embed.proj", False)
    assert c.frozen_paths() == {"embed.proj"}  # `embed.pos` is a unit of its own and still trains
    assert c.state("embed") == PARTLY
    c.set_trainable("embed", False)
    assert c.frozen_paths() == {"embed"}
    c.unfreeze_from("embed.proj")
    assert c.frozen_paths() == {"embed.pos"}  # named as a tensor, as the engine's plans do
    assert c.summary() == (30, 34, 1, 3)
    again = Checklist(net, ("fc",))
    again.set_frozen(plan_for(net, "custom", frozen=c.frozen_paths(), head_paths=("fc",)).is_frozen)
    assert again.frozen_paths() == {"embed.pos"}


ARCHS = ["thaw_digits_cnn", "resnet18", "mobilenet_v3_small", "vit_b_16", "swin_t", "regnet_y_400mf", "densenet121"]


@pytest.fixture(scope="module", params=ARCHS)
def skeleton(request):
    model = zoo.build_skeleton(request.param)
    heads = replace_head(model, HeadSpec(), 3)
    return model, heads


def test_every_preset_round_trips_through_the_settings(skeleton):
    """A preset's ticks are that preset again (not custom), its plan is what training gets, and the settings
    written from the ticks show the same ticks on a fresh checklist."""
    model, heads = skeleton
    c = Checklist(model, heads)
    cases = [("feature_extraction", 1), ("full", 1)] + [("last_blocks", n) for n in range(1, len(c.blocks))]
    for preset, n in cases:
        c.apply_preset(preset, n)
        assert c.matching_preset() == (preset, n if preset == "last_blocks" else None)
        assert c.plan() == plan_for(model, preset, last_blocks=n, head_paths=heads)
        settings = FreezeSettings(preset="custom", frozen=["x"], last_blocks=7)
        c.store(settings)
        assert (settings.preset, settings.frozen) == (preset, [])
        fresh = Checklist(model, heads)
        assert fresh.load(settings) is None and np.array_equal(fresh.frozen, c.frozen)


def test_hand_edits_store_the_smallest_cover_that_freezes_the_same_tensors(skeleton):
    model, heads = skeleton
    c = Checklist(model, heads)
    c.apply_preset("feature_extraction")
    c.set_trainable(c.blocks[1], True)  # thaw one block in the middle: no preset looks like that
    settings = FreezeSettings()
    c.store(settings)
    assert settings.preset == "custom" and c.blocks[1] not in settings.frozen
    custom = plan_for(model, "custom", frozen=settings.frozen, head_paths=heads)
    feature = plan_for(model, "feature_extraction", head_paths=heads)
    thawed = {n for n in frozen_tensors(model, feature, heads) if n.startswith(c.blocks[1] + ".")}
    assert thawed and frozen_tensors(model, custom, heads) == frozen_tensors(model, feature, heads) - thawed
    assert all(not any(p.startswith(q + ".") for q in settings.frozen) for p in settings.frozen)  # no path twice


def test_a_custom_plan_that_does_not_fit_is_reported_or_reset():
    settings = FreezeSettings(preset="custom", frozen=["block1", "stem"])
    resnet = Checklist(zoo.build_skeleton("resnet18"), ("fc",))
    error = resnet.load(settings)
    assert isinstance(error, ProjectError) and error.key == "freeze.frozen" and "'block1'" in error.problem
    assert settings.preset == "custom"  # loading only reports
    note = resnet.fit(settings)
    assert "does not fit" in note and "reset to feature extraction" in note
    assert (settings.preset, settings.frozen) == ("feature_extraction", [])
    assert resnet.matching_preset() == ("feature_extraction", None)
    fitting = FreezeSettings(preset="custom", frozen=["layer1"])
    assert resnet.fit(fitting) is None and fitting.frozen == ["layer1"]


def test_names_inside_the_head_are_never_unknown():
    model = DigitsCNN(num_classes=3)
    heads = replace_head(model, HeadSpec(kind="mlp", hidden=(8,)), 3)
    assert plan_for(model, "custom", frozen=["fc.weight", "stem"], head_paths=heads).frozen == {"fc.weight", "stem"}
    with pytest.raises(ProjectError, match="'layer9'"):
        plan_for(model, "custom", frozen=["layer9"], head_paths=heads)
    c = Checklist(model, heads)
    c.set_frozen(FreezePlan(frozenset({"fc.weight", "stem"})).is_frozen)
    assert c.frozen_paths() == {"stem"}  # the head is trained whatever the plan says


@pytest.mark.parametrize(("arch", "spec", "sized"), [
    ("resnet18", HeadSpec(), ["", "fc"]),
    ("resnet18", HeadSpec(kind="mlp", hidden=(64,)), ["", "fc", "fc.2"]),  # the hidden layer is known
    ("vgg11", HeadSpec(kind="cosine"), ["", "classifier", "classifier.6"]),
    ("squeezenet1_1", HeadSpec(), ["", "classifier", "classifier.1"]),  # a 1x1 convolution
])
def test_counts_that_follow_from_an_unknown_number_of_classes_are_unknown(arch, spec, sized):
    """Before the data is scanned the head is sized by a stand-in: the rows that hold its output layer have no
    count, so no number is shown that changes once the classes are known; every other row is counted."""
    model = zoo.build_skeleton(arch)
    heads = replace_head(model, spec, 1)
    guess = Checklist(model, heads, classes_known=False)
    assert [x.path for i, x in enumerate(guess.infos) if guess.counts(i) is None] == sized
    assert guess.head_params() is None and guess.summary()[:2] == (None, None)
    layers = Checklist(model, heads).summary()[2:]
    assert guess.summary()[2:] == layers  # the layers frozen and their number are known
    for n in (3, 7):
        model = zoo.build_skeleton(arch)
        heads = replace_head(model, spec, n)
        known = Checklist(model, heads)
        assert known.head_params() == sum(p.numel() for h in heads for p in model.get_submodule(h).parameters())
        assert known.summary()[:2] == (sum(p.numel() for p in model.parameters()),) * 2
        assert all(known.counts(i) == guess.counts(i) for i in range(len(guess)) if guess.counts(i) is not None)
