"""Grad-CAM on real torchvision models with random weights: the analytic oracle, frozen backbones, token
layouts, side effects, the head-randomisation sanity check, and the overlay."""

from functools import cache

import numpy as np
import pytest
import torch
from captum import attr as captum_attr
from PIL import Image
from torch import nn

from engine.model import zoo
from engine.model.heads import HeadSpec, replace_head
from engine.results.saliency import TARGETS, grad_cam, overlay, saliency, target_layer

CLASSES = 5
DEFAULT_HEAD = HeadSpec()


def frozen(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


@cache
def thaw_model(arch: str, head: HeadSpec = DEFAULT_HEAD) -> nn.Module:
    """`arch` as Thaw assembles it, random weights: a new head (the default init), the backbone frozen."""
    torch.manual_seed(0)
    model = zoo.build_model(arch)
    replace_head(model, head, CLASSES)
    return frozen(model)


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


def test_resnet_map_is_the_class_activation_map():
    """Global average pooling + one Linear: Grad-CAM is CAM (Zhou et al. 2016), relu(w_c . A) / (h*w)."""
    model = thaw_model("resnet18")
    x = images(2, 96)
    kept = []
    handle = model.layer4.register_forward_hook(lambda m, i, out: kept.append(out))
    with torch.no_grad():
        model(x)
    handle.remove()
    acts = kept[0]
    for target in (3, [1, 4]):
        classes = [target] * 2 if isinstance(target, int) else target
        with torch.no_grad():
            cam = grad_cam(model, x, target, layer="layer4")
        for i, c in enumerate(classes):
            expected = torch.relu(torch.einsum("k,kij->ij", model.fc.weight[c], acts[i])) / acts[i, 0].numel()
            torch.testing.assert_close(cam[i], expected, atol=1e-5, rtol=0)
    top = grad_cam(model, x)  # the default: each image's top class, at the default layer (layer4's last block)
    torch.testing.assert_close(top, grad_cam(model, x, model(x).argmax(1).tolist(), layer="layer4.1"))


@pytest.mark.parametrize(("arch", "head", "size", "n", "layer", "grid"), [
    ("resnet18", HeadSpec(), 64, 2, "layer4.1", (2, 2)),
    ("mobilenet_v3_small", HeadSpec("mlp", hidden=(16,)), 64, 2, "features.12", (2, 2)),
    ("efficientnet_b0", HeadSpec(), 64, 2, "features.8", (2, 2)),
    ("convnext_tiny", HeadSpec(), 64, 2, "features.7", (2, 2)),
    ("vit_b_16", HeadSpec(), 224, 1, "encoder.layers.encoder_layer_11.ln_1", (14, 14)),
    ("swin_t", HeadSpec(), 224, 2, "features.7.1.norm2", (7, 7)),
    (zoo.DEMO_ARCH, HeadSpec(), 32, 2, "block3", (4, 4)),  # not in the table: the last feature map found
])
def test_runs_on_a_frozen_backbone_under_inference_mode(arch, head, size, n, layer, grid):
    model = thaw_model(arch, head)
    assert target_layer(model) == target_layer(model, arch) == layer
    x = images(n, size)
    with torch.inference_mode():
        maps = grad_cam(model, x)
        shown = saliency(model, x)
    assert maps.shape == (n, *grid)
    assert torch.isfinite(maps).all() and (maps >= 0).all()
    # The gradient reaches the layer for every image: some class has evidence there. (One class's map may be
    # all zero with random weights: it is the ReLU of a weighted sum.)
    with torch.inference_mode():
        every = torch.stack([grad_cam(model, x, c).flatten(1).amax(1) for c in range(CLASSES)])
    assert (every.amax(0) > 0).all()
    assert shown.shape == (n, size, size)
    assert shown.min() >= 0 and shown.max() <= 1
    assert torch.allclose(shown.flatten(1).amax(1), (maps.flatten(1).amax(1) > 0).float())  # zero stays zero


@pytest.mark.parametrize("family", sorted(TARGETS))
def test_every_family_default_layer_is_a_map(family):
    """On the meta device (no compute): each family's default layer resolves and its output is a map."""
    arch = next(a for a in zoo.list_architectures() if a != zoo.DEMO_ARCH and zoo.arch_info(a).family == family)
    model = zoo.build_skeleton(arch).eval()
    info = zoo.arch_info(arch)
    size = info.fixed_size or info.preprocess.crop
    outs = []
    model.get_submodule(target_layer(model, arch)).register_forward_hook(lambda m, i, out: outs.append(out))
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, device="meta"))
    shape = outs[0].shape
    assert len(shape) in (3, 4) and shape[-1] > 1


def test_leaves_the_model_as_it_was():
    """requires_grad, each module's mode (a frozen BatchNorm in eval inside a training model), the hooks,
    the BatchNorm statistics and every .grad are as before, also when the forward pass raises."""
    torch.manual_seed(0)
    model = zoo.build_model("resnet18")
    replace_head(model, HeadSpec(), CLASSES)
    for p in model.layer1.parameters():
        p.requires_grad_(False)
    model.train()
    model.layer1[0].bn1.eval()
    before = ([p.requires_grad for p in model.parameters()], [m.training for m in model.modules()],
              hook_count(model), {k: v.clone() for k, v in model.state_dict().items()})
    grad_cam(model, images(2, 64))
    with pytest.raises(RuntimeError):
        grad_cam(model, torch.randn(1, 1, 64, 64), layer="layer4")  # one channel: the first conv refuses it
    after = ([p.requires_grad for p in model.parameters()], [m.training for m in model.modules()],
             hook_count(model), model.state_dict())
    assert after[:3] == before[:3]
    for key, value in before[3].items():
        assert torch.equal(after[3][key], value), key
    assert all(p.grad is None for p in model.parameters())


def test_randomising_the_head_changes_the_map():
    """Adebayo et al. 2018: a map that survives re-initialising the classifier shows the image, not the model."""
    model = zoo.build_model("resnet18")
    replace_head(model, HeadSpec(), CLASSES)
    frozen(model)
    x = images(2, 224, seed=1)
    first = grad_cam(model, x, target=0)
    torch.manual_seed(1)
    model.fc.reset_parameters()
    second = grad_cam(model, x, target=0)
    for a, b in zip(first, second, strict=True):
        assert torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1] < 0.9


def test_the_last_vit_block_output_is_refused():
    """Only its class token reaches the head: the patch tokens' gradient is zero (pytorch-grad-cam#513)."""
    model = thaw_model("vit_b_16")
    with pytest.raises(ValueError, match="class token"):
        grad_cam(model, images(1, 224), layer="encoder.layers.encoder_layer_11")


def test_overlay_is_the_image_size_and_opacity_zero_is_the_image():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    heat = np.random.default_rng(1).random((7, 7))
    shown = overlay(image, heat)
    assert shown.mode == "RGB" and shown.size == image.size
    assert np.asarray(shown).tolist() != np.asarray(image).tolist()
    assert np.array_equal(np.asarray(overlay(image, heat, opacity=0.0)), np.asarray(image))
    assert overlay(image.convert("L"), heat).mode == "RGB"


def test_matches_captum():
    model = thaw_model("resnet18")
    x = images(2, 96)
    theirs = captum_attr.LayerGradCam(model, model.layer4).attribute(x, target=2, relu_attributions=True)
    torch.testing.assert_close(grad_cam(model, x, 2, layer="layer4"), theirs[:, 0].detach(), atol=1e-6, rtol=0)


def test_a_cosine_head_gets_the_map_of_its_class_vector_not_a_blank_one():
    """A cosine head's logit ignores the features' length, so its plain gradient gives no positive evidence; the
    map is CAM with the unit class vector, scale x relu(w_c / |w_c| . A) / (h*w), and the default class is still
    the top logit's."""
    model = thaw_model("resnet18", HeadSpec(kind="cosine"))
    x = images(2, 96)
    kept = []
    handle = model.layer4.register_forward_hook(lambda m, i, out: kept.append(out))
    with torch.no_grad():
        logits = model(x)
    handle.remove()
    acts, unit = kept[0], torch.nn.functional.normalize(model.fc.weight, dim=-1)
    cam = grad_cam(model, x, None, layer="layer4")
    assert hook_count(model) == 0 and "forward" not in vars(model.fc)  # the head is itself again
    for i, c in enumerate(logits.argmax(1).tolist()):
        expected = model.fc.scale * torch.relu(torch.einsum("k,kij->ij", unit[c], acts[i])) / acts[i, 0].numel()
        assert torch.allclose(cam[i], expected, atol=1e-5) and cam[i].max() > 0
    assert torch.allclose(grad_cam(model, x, logits.argmax(1).tolist(), layer="layer4"), cam)
