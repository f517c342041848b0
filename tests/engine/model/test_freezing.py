"""Freeze plans: frozen tensors stay bit-identical through real training steps, trainable ones move."""

import pytest
import torch
from torch import nn
from torchvision.models import VisionTransformer, mobilenet_v3_small, resnet18

from engine.errors import ProjectError
from engine.model.checklist import plan_for
from engine.model.freezing import (
    FreezePlan,
    apply_plan,
    frozen_tensors,
    set_frozen_bn_eval,
    snapshot_frozen,
    verify_frozen,
)
from engine.model.heads import HeadSpec, replace_head


def small_vit() -> nn.Module:
    """ViT-like and small, with the proportions of a real one: the encoder holds > 90% of the parameters."""
    return VisionTransformer(image_size=32, patch_size=4, num_layers=3, num_heads=2, hidden_dim=32, mlp_dim=64)


MODELS = {"resnet18": resnet18, "mobilenet_v3_small": mobilenet_v3_small, "vit_small": small_vit}


def train_steps(model: nn.Module, plan: FreezePlan, heads: list[str], steps: int = 3) -> None:
    """A few real SGD steps with momentum; `model.train()` is called every step, as a loop would."""
    torch.manual_seed(1)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9,
                          weight_decay=1e-3)
    x = torch.randn(4, 3, 32, 32) * 3 + 1  # far from ImageNet statistics: BN stats would move if updated
    y = torch.tensor([0, 1, 2, 0])
    for _ in range(steps):
        model.train()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("arch", list(MODELS))
@pytest.mark.parametrize("preset", ["feature_extraction", "last_blocks"])
def test_training_leaves_frozen_tensors_bit_identical(arch, preset):
    torch.manual_seed(0)
    model = MODELS[arch]()
    heads = replace_head(model, HeadSpec(), 3)
    plan = plan_for(model, preset, last_blocks=1, head_paths=heads)
    apply_plan(model, plan, heads)
    frozen = frozen_tensors(model, plan, heads)
    before_all = {k: v.clone() for k, v in model.state_dict().items()}
    snap = snapshot_frozen(model, plan, heads)
    assert snap and set(snap) == frozen
    if arch != "vit_small":  # BatchNorm statistics are among the frozen tensors
        assert any(k.endswith("running_mean") for k in snap) and any(k.endswith("num_batches_tracked") for k in snap)

    train_steps(model, plan, heads)

    check = verify_frozen(model, snap)
    assert check.ok, check.changed
    assert check.checked == len(snap)
    after = model.state_dict()
    moved = {k for k, v in after.items() if not torch.equal(v, before_all[k])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not (moved & frozen)
    assert {f"{heads[0]}.weight", f"{heads[0]}.bias"} <= moved
    if preset == "last_blocks":  # the last block trains too
        assert any(not k.startswith(heads[0]) for k in moved & trainable)
    else:
        assert trainable == {f"{heads[0]}.weight", f"{heads[0]}.bias"}


def test_verify_reports_a_changed_frozen_tensor():
    model = resnet18()
    heads = replace_head(model, HeadSpec(), 2)
    plan = plan_for(model, "feature_extraction", head_paths=heads)
    snap = snapshot_frozen(model, plan, heads)
    with torch.no_grad():
        model.layer1[0].bn1.running_var[0] += 1e-7
    check = verify_frozen(model, snap)
    assert not check.ok and check.changed == ["layer1.0.bn1.running_var"]


def test_frozen_batchnorm_stays_in_eval_mode_across_train_calls():
    model = resnet18()
    heads = replace_head(model, HeadSpec(), 2)
    plan = plan_for(model, "last_blocks", last_blocks=1, head_paths=heads)
    apply_plan(model, plan, heads)
    model.train()
    model(torch.randn(2, 3, 32, 32))
    assert not model.layer1[0].bn1.training  # frozen: the hook put it back in eval
    assert model.layer4[0].bn1.training  # trainable block: train mode as asked
    model.train()
    set_frozen_bn_eval(model, plan, heads)
    assert not model.bn1.training and model.layer4[1].bn2.training


def test_train_frozen_bn_trains_batchnorm_inside_frozen_blocks():
    torch.manual_seed(0)
    model = resnet18()
    heads = replace_head(model, HeadSpec(), 3)
    plan = plan_for(model, "feature_extraction", train_frozen_bn=True, head_paths=heads)
    apply_plan(model, plan, heads)
    assert model.layer1[0].bn1.weight.requires_grad and not model.layer1[0].conv1.weight.requires_grad
    snap = snapshot_frozen(model, plan, heads)
    assert "layer1.0.bn1.running_mean" not in snap and "layer1.0.conv1.weight" in snap
    stats = model.layer1[0].bn1.running_mean.clone()
    train_steps(model, plan, heads, steps=1)
    assert not torch.equal(stats, model.layer1[0].bn1.running_mean)
    assert verify_frozen(model, snap).ok


def test_presets_on_a_resnet():
    model = resnet18()
    heads = replace_head(model, HeadSpec(), 2)
    assert plan_for(model, "full", head_paths=heads).frozen == frozenset()
    assert plan_for(model, "feature_extraction", head_paths=heads).frozen == {
        "conv1", "bn1", "layer1", "layer2", "layer3", "layer4"}
    assert plan_for(model, "last_blocks", last_blocks=2, head_paths=heads).frozen == {
        "conv1", "bn1", "layer1", "layer2"}
    assert plan_for(model, "last_blocks", last_blocks=0, head_paths=heads) == plan_for(
        model, "feature_extraction", head_paths=heads)
    assert plan_for(model, "last_blocks", last_blocks=99, head_paths=heads).frozen == frozenset()


def test_vit_loose_tensors_are_frozen_with_the_blocks_before_them():
    model = small_vit()
    heads = replace_head(model, HeadSpec(), 2)
    plan = plan_for(model, "last_blocks", last_blocks=1, head_paths=heads)
    assert {"class_token", "conv_proj", "encoder.pos_embedding", "encoder.layers.encoder_layer_0",
            "encoder.layers.encoder_layer_1"} == set(plan.frozen)
    assert not plan.is_frozen("encoder.ln.weight") and not plan.is_frozen("encoder.layers.encoder_layer_2")


def test_head_stays_trainable_under_a_frozen_parent():
    model = small_vit()
    heads = replace_head(model, HeadSpec(), 2)
    assert heads == ["heads.head"]
    plan = plan_for(model, "custom", frozen=["heads", "encoder"], head_paths=heads)
    apply_plan(model, plan, heads)
    assert model.heads.head.weight.requires_grad
    assert not model.encoder.pos_embedding.requires_grad and model.class_token.requires_grad


def test_custom_plan_with_an_unknown_path_names_the_key():
    model = resnet18()
    with pytest.raises(ProjectError) as err:
        plan_for(model, "custom", frozen=["layer9"], head_paths=["fc"])
    assert err.value.key == "freeze.frozen" and "layer9" in str(err.value)
    with pytest.raises(ProjectError) as err:
        plan_for(model, "most", head_paths=["fc"])
    assert err.value.key == "freeze.preset"


def test_is_frozen_follows_ancestors():
    plan = FreezePlan(frozenset({"layer1", "class_token"}))
    assert plan.is_frozen("layer1") and plan.is_frozen("layer1.0.conv1.weight") and plan.is_frozen("class_token")
    assert not plan.is_frozen("layer10.weight") and not plan.is_frozen("layer2")
    assert FreezePlan(frozenset({""})).is_frozen("anything.at.all")
