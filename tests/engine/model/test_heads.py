"""Replacement heads on every architecture (on the meta device: shapes without memory or compute)."""

import pytest
import torch
from torch import nn
from torchvision.models import googlenet, resnet18, squeezenet1_1

from engine.model import zoo
from engine.model.heads import (
    COSINE_SCALE,
    CosineConv2d,
    CosineLinear,
    HeadSpec,
    describe_head,
    find_classifier,
    head_in_features,
    output_layers,
    replace_head,
)
from engine.model.layers import describe

ALL = zoo.list_architectures()


def test_the_zoo_holds_every_torchvision_classifier_and_the_demo():
    assert len(ALL) == 81 and zoo.DEMO_ARCH in ALL


@pytest.mark.parametrize("arch", ALL)
def test_head_replaced_for_3_and_7_classes(arch):
    """On meta tensors at the smallest allowed size: a train-mode forward gives [batch, 3]; the 7-class head
    and a 5-class cosine head, swapped in afterwards, map the same features to 7 and 5 outputs. The tree's
    total is exact."""
    info = zoo.arch_info(arch)
    size, _ = zoo.effective_image_size(info, 16)
    model = zoo.build_skeleton(arch)
    path = find_classifier(model)
    width = head_in_features(model, [path])
    model.train()
    heads = replace_head(model, HeadSpec(), 3)
    assert heads == [path] and head_in_features(model, heads) == width
    seen = []
    model.get_submodule(path).register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    out = model(torch.empty(2, 3, size, size, device="meta"))
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 3)  # aux outputs switched off
    assert replace_head(model, HeadSpec(), 7) == [path]
    assert tuple(model.get_submodule(path)(seen[0]).shape[:2]) == (2, 7)
    assert replace_head(model, HeadSpec(kind="cosine"), 5) == [path]  # found again, takes the same features
    assert tuple(model.get_submodule(path)(seen[0]).shape[:2]) == (2, 5)
    tree = describe(model, head_paths=heads)
    assert tree.total_params == sum(p.numel() for p in model.parameters())
    assert tree.children and sum(c.total_params for c in tree.children) + tree.own_params == tree.total_params


def test_mlp_head_real_forward_and_description():
    torch.manual_seed(0)
    model = resnet18()
    spec = HeadSpec(kind="mlp", hidden=(64, 32), dropout=0.2, activation="gelu")
    assert replace_head(model, spec, 5) == ["fc"]
    assert [type(m).__name__ for m in model.fc] == ["Linear", "GELU", "Dropout", "Linear", "GELU", "Dropout", "Linear"]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    assert describe_head(spec, 512, 5) == "512 -> 64 -> GELU -> Dropout 0.2 -> 32 -> GELU -> Dropout 0.2 -> 5"
    assert describe_head(HeadSpec(), 512, 5) == "512 -> 5"


def test_squeezenet_head_is_a_1x1_convolution():
    model = squeezenet1_1()
    assert find_classifier(model) == "classifier.1"
    replace_head(model, HeadSpec(kind="mlp", hidden=(16,)), 4)
    assert isinstance(model.classifier[1], nn.Sequential) and isinstance(model.classifier[1][0], nn.Conv2d)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 4)


def test_aux_heads_are_switched_off():
    model = googlenet(weights=None, aux_logits=True, init_weights=False)
    assert find_classifier(model) == "fc"
    replace_head(model, HeadSpec(), 3)
    assert model.aux1 is None and model.aux2 is None and model.aux_logits is False
    assert not any(k.startswith("aux") for k in model.state_dict())
    model.train()
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3)


def test_head_from_project_settings():
    from engine.project import HeadSettings

    spec = HeadSpec.from_project(HeadSettings(kind="mlp", hidden=[128], dropout=0.1))
    assert spec == HeadSpec(kind="mlp", hidden=(128,), dropout=0.1)
    assert HeadSpec.from_project(HeadSettings()).layer_sizes() == ()  # linear ignores the hidden sizes
    with pytest.raises(ValueError, match="kind"):
        HeadSpec(kind="conv")


def test_cosine_head_scores_by_angle_with_a_learned_scale():
    """Scaling an image's features leaves its logits alone; logits stay within +-scale; the scale trains."""
    torch.manual_seed(0)
    model = resnet18()
    assert replace_head(model, HeadSpec(kind="cosine"), 4) == ["fc"]
    head = model.fc
    assert isinstance(head, CosineLinear) and head.bias is None
    assert find_classifier(model) == "fc" and head_in_features(model, ["fc"]) == 512  # found again by the rule
    f = torch.randn(3, 512)
    out = head(f)
    assert torch.allclose(out, head(7.0 * f), atol=1e-5)
    assert out.abs().max() <= COSINE_SCALE + 1e-4
    cos = torch.nn.functional.cosine_similarity(f[0], head.weight[1], dim=0)
    assert torch.isclose(out[0, 1], COSINE_SCALE * cos, atol=1e-5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    loss = torch.nn.functional.cross_entropy(head(f), torch.tensor([0, 1, 2]))
    loss.backward()
    assert head.scale.grad is not None and head.scale.grad != 0
    assert describe_head(HeadSpec(kind="cosine"), 512, 4) == "512 -> cosine similarity x learned scale -> 4"


def test_cosine_head_on_squeezenet_is_a_1x1_convolution():
    model = squeezenet1_1()
    replace_head(model, HeadSpec(kind="cosine"), 3)
    assert isinstance(model.classifier[1], CosineConv2d) and find_classifier(model) == "classifier.1"
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_output_layers_are_each_heads_last_linear_or_convolution():
    model = resnet18()
    assert output_layers(model, replace_head(model, HeadSpec(kind="mlp", hidden=(16, 8)), 4)) == ["fc.4"]
    model = squeezenet1_1()
    assert output_layers(model, replace_head(model, HeadSpec(), 4)) == ["classifier.1"]
    model = googlenet(init_weights=False, aux_logits=True)
    assert output_layers(model, ["fc", "aux1", "aux2"]) == ["fc", "aux1.fc2", "aux2.fc2"]  # a source's own heads
