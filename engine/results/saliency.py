"""Grad-CAM (Selvaraju et al. 2017): where in the image a model found the evidence for a class.

Written here, with torch only, because the libraries fail on Thaw's normal case, a frozen backbone
(pytorch-grad-cam#254, torch-cam), or need OpenCV. A forward hook makes the layer's output a leaf of its own
and the class score is differentiated with respect to that leaf alone: a frozen backbone or a caller's
``no_grad`` costs nothing, no parameter's ``.grad`` is touched and the backward pass stops at the layer.

A cosine head's logit (Thaw's ``head.kind = "cosine"``) does not change when the features grow, so its gradient
is orthogonal to them and the channel-weighted sum comes out zero or negative everywhere: a blank map. Its class
score is differentiated before the features are normalised instead (`CosineLinear.evidence`), which ranks the
classes of each image as the logits do.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from engine.model import zoo
from engine.model.heads import CosineConv2d, CosineLinear
from engine.model.modpath import join

LAST = "-1"  # a path segment in TARGETS: the module's last child
# The default layer per torchvision family (zoo.ArchInfo.family): the last map before the classifier's
# pooling. ViT: the last block's input norm, since only the class token of its output reaches the head;
# Swin: its last block's second norm (torch-cam #412: norm1 gives maps of the background).
TARGETS = {
    "resnet": "layer4.-1", "regnet": "trunk_output", "densenet": "features",
    "mobilenetv2": "features.-1", "mobilenetv3": "features.-1", "efficientnet": "features.-1",
    "vgg": "features.-1", "convnext": "features.-1", "squeezenet": "features.-1",
    "mnasnet": "layers.-1", "googlenet": "inception5b", "inception": "Mixed_7c", "shufflenetv2": "conv5",
    "vision_transformer": "encoder.layers.-1.ln_1", "swin_transformer": "features.-1.-1.norm2",
    "maxvit": "blocks.-1.layers.-1",
}
TIMM_VIT = "blocks.-1.norm1"  # a timm ViT with one class token: as torchvision's, the last block's input norm
PROBE_SIZE = 224  # the dry forward's image, for a model outside the table when no example is given
_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)  # they summarise a map for the classifier


def target_layer(model: nn.Module, arch: str | None = None, example: torch.Tensor | None = None) -> str:
    """The dotted path of the default Grad-CAM layer: from TARGETS by the model's family (`arch`'s, else the
    module that defines the model's class), else the last module whose output is a feature map with more than
    one position (an adaptive pool's aside), found by a forward pass of `example` (one 224 px image). A timm
    ViT (its family is timm's) is told by its one class token."""
    family = zoo.arch_info(arch).family if arch else type(model).__module__.rsplit(".", 1)[-1]
    if family in TARGETS:
        return _resolve(model, TARGETS[family])
    if getattr(model, "num_prefix_tokens", None) == 1:  # the fallback would find only the patch embedding's map
        with suppress(AttributeError):  # a ViT-like model without `blocks[-1].norm1`
            return _resolve(model, TIMM_VIT)
    if example is None:
        ref = next(model.parameters())
        example = torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE, device=ref.device, dtype=ref.dtype)
    return _last_map(model, example)


def _resolve(model: nn.Module, spec: str) -> str:
    path, module = "", model
    for part in spec.split("."):
        name = list(dict(module.named_children()))[-1] if part == LAST else part
        path, module = join(path, name), module.get_submodule(name)
    return path


def _last_map(model: nn.Module, example: torch.Tensor) -> str:
    found: list[str] = []

    def note(path: str):
        def hook(_module: nn.Module, _inputs: object, out: object) -> None:
            if _is_map(out, example.shape[-2:]):
                found.append(path)
        return hook

    handles = [m.register_forward_hook(note(path)) for path, m in model.named_modules()
               if path and not isinstance(m, _POOLS)]
    try:
        with _evaluating(model), torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        raise ValueError(f"{type(model).__name__} has no layer with a spatial feature map; name one")
    return found[-1]


def _is_map(out: object, size: Sequence[int]) -> bool:
    """A 4-D feature map of the input with more than one position."""
    if not isinstance(out, torch.Tensor) or out.ndim != 4 or _layout(out, size) is None:
        return False
    return math.prod(_to_nchw(out, size, "").shape[2:]) > 1


@contextmanager
def _cosine_evidence(model: nn.Module) -> Iterator[None]:
    """Inside, every cosine head gives its un-normalised class scores (see the module's docstring)."""
    heads = [m for m in model.modules() if isinstance(m, (CosineLinear, CosineConv2d))]
    for m in heads:
        m.forward = m.evidence
    try:
        yield
    finally:
        for m in heads:
            del m.forward


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode inside (BatchNorm's statistics stay as they are); each module's own mode back after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _fits(h: int, w: int, size: Sequence[int]) -> bool:
    """Whether an h x w grid can be the input's size divided by one stride, each side rounded."""
    height, width = size
    return h <= height and w <= width and abs(h * width - w * height) < height + width


def _layout(t: torch.Tensor, size: Sequence[int]) -> str | None:
    """"nchw" or "nhwc" for a 4-D map (channels first preferred when both fit), "tokens" for (N, 1 + h*w, C)."""
    if t.ndim == 4:
        return "nchw" if _fits(*t.shape[2:], size) else "nhwc" if _fits(*t.shape[1:3], size) else None
    return "tokens" if t.ndim == 3 and _token_grid(t.shape[1] - 1, size) else None


def _token_grid(n: int, size: Sequence[int]) -> tuple[int, int] | None:
    if n < 1:
        return None
    h = max(1, round(math.sqrt(n * size[0] / size[1])))
    return (h, n // h) if n % h == 0 and _fits(h, n // h, size) else None


def _to_nchw(t: torch.Tensor, size: Sequence[int], layer: str) -> torch.Tensor:
    """A layer's output as (N, C, h, w): NHWC permuted (Swin), tokens without the class token reshaped (ViT)."""
    layout = _layout(t, size)
    if layout == "nchw":
        return t
    if layout == "nhwc":
        return t.permute(0, 3, 1, 2)
    if layout == "tokens":
        return t[:, 1:].reshape(t.shape[0], *_token_grid(t.shape[1] - 1, size), t.shape[2]).permute(0, 3, 1, 2)
    raise ValueError(f"layer {layer!r} gives a {tuple(t.shape)} tensor, not a feature map of a "
                     f"{size[0]}x{size[1]} image (NCHW, NHWC or a class token and patch tokens)")


def _classes(target: int | Sequence[int] | None, logits: torch.Tensor) -> torch.Tensor:
    if target is None:
        return logits.argmax(1)
    classes = torch.as_tensor([target] * len(logits) if isinstance(target, int) else list(target),
                              device=logits.device, dtype=torch.long)
    if classes.shape != (len(logits),):
        raise ValueError(f"{len(classes)} target classes for {len(logits)} images")
    if ((classes < 0) | (classes >= logits.shape[1])).any():
        raise ValueError(f"target classes {classes.tolist()} outside the model's {logits.shape[1]} outputs")
    return classes


def grad_cam(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | None = None,
             layer: str | None = None, arch: str | None = None) -> torch.Tensor:
    """Grad-CAM maps (N, h, w) at `layer`'s resolution (default `target_layer`) for class `target` (one for
    all, one per image, or None: each image's top class): relu of the layer's channels weighted by their
    mean gradient. Unnormalised, so maps of one batch compare. Leaves the model as it found it."""
    layer = layer if layer is not None else target_layer(model, arch, x[:1])
    size = x.shape[-2:]
    leaves: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: object, out: object) -> torch.Tensor:
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"layer {layer!r} gives a {type(out).__name__}, not a tensor")
        leaves.append(out.detach().requires_grad_(True))
        return leaves[-1].clone()  # what follows may change it in place (DenseNet's ReLU); the leaf stays

    handle = model.get_submodule(layer).register_forward_hook(keep)
    try:
        with _evaluating(model), _cosine_evidence(model), torch.inference_mode(False), torch.enable_grad():
            logits = model(x.clone())  # a clone: an inference-mode tensor cannot enter autograd
            if len(leaves) != 1:
                raise ValueError(f"layer {layer!r} ran {len(leaves)} times in one forward pass, not once")
            score = logits.gather(1, _classes(target, logits)[:, None]).sum()
            (grad,) = torch.autograd.grad(score, leaves, allow_unused=True)
    finally:
        handle.remove()
    if grad is None:
        raise ValueError(f"the class scores do not depend on layer {layer!r}")
    if _layout(grad, size) == "tokens" and grad[:, :1].any() and not grad[:, 1:].any():
        raise ValueError(f"the class scores reach layer {layer!r} through its class token only (its patch "
                         "tokens' gradient is zero): choose an earlier layer, e.g. the last block's ln_1")
    acts, grads = _to_nchw(leaves[0].detach(), size, layer), _to_nchw(grad, size, layer)
    return F.relu((grads.mean(dim=(2, 3), keepdim=True) * acts).sum(1))


def saliency(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | None = None,
             layer: str | None = None, arch: str | None = None) -> torch.Tensor:
    """Grad-CAM maps for display: (N, H, W) at the input's size, bilinear, each scaled to [0, 1] (zero stays
    zero)."""
    maps = grad_cam(model, x, target, layer, arch)[:, None]
    maps = F.interpolate(maps, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny)


# Turbo (Mikhailov 2019), a rainbow map whose lightness rises and falls smoothly: Ruofei Du's polynomial
# approximation (Google, Apache-2.0); rows are red, green, blue; columns the coefficients of x^0 .. x^5.
_TURBO = np.array([[0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
                   [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
                   [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973]])
_POWERS = np.linspace(0, 1, 256)[:, None] ** np.arange(6)
TURBO_LUT = (np.clip(_POWERS @ _TURBO.T, 0, 1) * 255).round().astype(np.uint8)  # 256 levels x RGB


def overlay(image: Image.Image, heat: np.ndarray, opacity: float = 0.5) -> Image.Image:
    """`heat` (H, W) in [0, 1], resized to `image` and coloured with turbo, blended over it at `opacity`."""
    base = image.convert("RGB")
    heat = np.asarray(Image.fromarray(np.asarray(heat, dtype=np.float32)).resize(base.size, Image.Resampling.BILINEAR))
    colour = Image.fromarray(TURBO_LUT[(np.clip(heat, 0, 1) * 255).round().astype(np.uint8)])
    return Image.blend(base, colour, opacity)
