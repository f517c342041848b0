"""Replacement heads: where a model keeps its classifier, and what to put there instead.

The classifier is found by a rule, not a table of names: the last `nn.Linear` registered in the model
(ResNet ``fc``, VGG/MobileNet/EfficientNet ``classifier.N``, ViT ``heads.head``, Swin ``head``, ConvNeXt
``classifier.2``, MaxViT ``classifier.5``), or, in a model without one, the last `nn.Conv2d` (SqueezeNet's
1x1 convolution ``classifier.1``). Auxiliary heads (GoogLeNet ``aux1``/``aux2``, Inception v3
``AuxLogits``) are outside that search and are switched off when the head is replaced, so every model
returns one logits tensor in train and eval mode alike.

A "cosine" head scores each class by the cosine between the features and a learned class vector, times a
learned scale (Gidaris & Komodakis 2018; Chen et al. 2019, "A Closer Look at Few-shot Classification"): with
a few images per class it is steadier than a linear layer, because no class can win by sheer feature norm.
It subclasses `nn.Linear` (or `nn.Conv2d`), so the rules above still find it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from engine.project import HEAD_KINDS  # "keep": the source's own classifier, not built here

COSINE_SCALE = 10.0  # the cosine head's starting scale: logits in [-10, 10], a confident softmax for few classes
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class HeadSpec:
    """A new classifier: "linear" (in -> classes), "cosine" (cosine similarity x learned scale) or "mlp"
    (hidden layers, activation, dropout); or "keep", the source's own classifier (`keep_head`)."""

    kind: str = "linear"
    hidden: tuple[int, ...] = ()
    dropout: float = 0.0
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ValueError(f"head kind must be one of {', '.join(HEAD_KINDS)}, not {self.kind!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"head activation must be one of {', '.join(ACTIVATIONS)}, not {self.activation!r}")

    @classmethod
    def from_project(cls, head: Any) -> HeadSpec:
        """From a project's [head] section (`engine.project.HeadSettings`)."""
        return cls(kind=head.kind, hidden=tuple(int(h) for h in head.hidden), dropout=float(head.dropout),
                   activation=getattr(head, "activation", "relu"))

    def layer_sizes(self) -> tuple[int, ...]:
        return self.hidden if self.kind == "mlp" else ()


def aux_head_names(model: nn.Module) -> list[str]:
    """Top-level auxiliary classifiers (only in models that have an ``aux_logits`` switch)."""
    if not hasattr(model, "aux_logits"):
        return []
    return [name for name, child in model.named_children() if name.lower().startswith("aux") and child is not None]


def declared_classifiers(model: nn.Module) -> list[str]:
    """The classifiers a timm model's config names (``pretrained_cfg["classifier"]``: ``fc``, ``head.fc``, or
    ViT-distilled's ``head`` and ``head_dist``), where they are Linear or Conv2d layers; [] for other models."""
    cfg = getattr(model, "pretrained_cfg", None)
    named = cfg.get("classifier") if isinstance(cfg, dict) else None
    named = [named] if isinstance(named, str) else list(named or ())
    modules = dict(model.named_modules())
    return [n for n in named if isinstance(modules.get(n), (nn.Linear, nn.Conv2d))]


def find_classifier(model: nn.Module) -> str:
    """Dotted path of the final classifier: the one a timm config names, else the last Linear outside aux
    heads, else the last Conv2d."""
    declared = declared_classifiers(model)
    if declared:
        return declared[0]
    aux = tuple(aux_head_names(model))
    linear, conv = None, None
    for path, module in model.named_modules():
        if aux and path.split(".")[0] in aux:
            continue
        if isinstance(module, nn.Linear) and not isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear):
            linear = path
        elif isinstance(module, nn.Conv2d):
            conv = path
    found = linear if linear is not None else conv
    if not found:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv2d layer to use as its classifier")
    return found


def classifier_paths(model: nn.Module) -> list[str]:
    """The classifier(s) and the auxiliary heads: the parts a new head makes obsolete."""
    return declared_classifiers(model) or [find_classifier(model), *aux_head_names(model)]


def _in_features(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.in_features
    if isinstance(module, nn.Conv2d):
        return module.in_channels
    raise TypeError(f"cannot read the input width of a {type(module).__name__} head")


def heads_of(model: nn.Module, head_paths: Sequence[str] = ()) -> tuple[str, ...]:
    """`head_paths` as given, or the model's own classifier and auxiliary heads when none are."""
    return tuple(head_paths) or tuple(classifier_paths(model))


def output_layers(model: nn.Module, head_paths: Sequence[str]) -> list[str]:
    """Each head's last Linear or Conv2d: the layer with one output per class, whose size (and so every count
    that includes it) follows from the number of classes."""
    out = []
    for head in head_paths:
        last = [path for path, m in model.get_submodule(head).named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        if last:
            out.append(f"{head}.{last[-1]}" if last[-1] else head)
    return out


def head_in_features(model: nn.Module, head_paths: list[str] | tuple[str, ...]) -> int | None:
    """Width of the features a model's (new or kept) head receives: its first layer's input width."""
    if not head_paths:
        return None
    for module in model.get_submodule(head_paths[0]).modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            return _in_features(module)
    return None


class CosineLinear(nn.Linear):
    """Logits = scale x cos(features, class vector); the scale is learned."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.scale = nn.Parameter(torch.tensor(COSINE_SCALE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.evidence(F.normalize(x, dim=-1))

    def evidence(self, x: torch.Tensor) -> torch.Tensor:
        """The logits before the features are scaled to unit length: for each image they rank the classes as the
        logits do (the length is one positive number per image), and unlike the logits they grow with the
        features, so Grad-CAM can differentiate them (`engine.results.saliency`)."""
        return self.scale * F.linear(x, F.normalize(self.weight, dim=-1))


class CosineConv2d(nn.Conv2d):
    """The cosine head as a 1x1 convolution: the cosine over channels at every position (SqueezeNet)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1, bias=False)
        self.scale = nn.Parameter(torch.tensor(COSINE_SCALE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.evidence(F.normalize(x, dim=1))

    def evidence(self, x: torch.Tensor) -> torch.Tensor:
        """As `CosineLinear.evidence`, at every position."""
        return self.scale * F.conv2d(x, F.normalize(self.weight.flatten(1), dim=1).view_as(self.weight))


def build_head(spec: HeadSpec, in_features: int, num_classes: int, conv: bool = False) -> nn.Module:
    """The head module; `conv` builds it from 1x1 convolutions (for SqueezeNet's feature maps)."""
    if num_classes < 1:
        raise ValueError(f"a head needs at least one class, not {num_classes}")
    if spec.kind == "cosine":
        return (CosineConv2d if conv else CosineLinear)(in_features, num_classes)
    if spec.kind == "keep":
        raise ValueError("a kept head is the source's own classifier (keep_head), not a new one")

    def layer(i: int, o: int) -> nn.Module:
        return nn.Conv2d(i, o, kernel_size=1) if conv else nn.Linear(i, o)

    sizes = spec.layer_sizes()
    if not sizes:
        return layer(in_features, num_classes)
    parts: list[nn.Module] = []
    prev = in_features
    for h in sizes:
        parts += [layer(prev, h), ACTIVATIONS[spec.activation]()]
        if spec.dropout > 0:
            parts.append(nn.Dropout(spec.dropout))
        prev = h
    parts.append(layer(prev, num_classes))
    return nn.Sequential(*parts)


def _set_submodule(model: nn.Module, path: str, module: nn.Module | None) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, module)


def replace_head(model: nn.Module, spec: HeadSpec, num_classes: int) -> list[str]:
    """Put a new `spec` head with `num_classes` outputs in place of the classifier; returns its path(s).

    The new head sits on the old one's device and dtype. Auxiliary heads are removed and ``aux_logits``
    switched off, so the model's output is always a single logits tensor.
    """
    paths = declared_classifiers(model)[1:]  # a second classifier a timm model averages in (distilled ViTs)
    paths.insert(0, find_classifier(model))
    for path in paths:
        old = model.get_submodule(path)
        ref = next(old.parameters())
        head = build_head(spec, _in_features(old), num_classes, conv=isinstance(old, nn.Conv2d))
        _set_submodule(model, path, head.to(device=ref.device, dtype=ref.dtype))
    _drop_aux_heads(model)
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    return paths


def _drop_aux_heads(model: nn.Module) -> None:
    for name in aux_head_names(model):
        setattr(model, name, None)
    if hasattr(model, "aux_logits"):
        model.aux_logits = False


def missing_source_classes(source_classes: list[str], classes: list[str]) -> str | None:
    """Why the source's own head cannot serve `classes` (None when every one of them is among its classes)."""
    known = set(source_classes)
    missing = [c for c in classes if c not in known]
    if not missing:
        return None
    examples = ", ".join(repr(c) for c in source_classes[:5])
    return (f"the source's head has no class {missing[0]!r} ({len(missing)} of the data's {len(classes)} classes "
            f"are not among its {len(source_classes)}, e.g. {examples}); keeping it needs folders named like its "
            "classes; otherwise choose a new head")


def keep_head(model: nn.Module, source_classes: list[str] | None = None,
              classes: list[str] | None = None) -> list[str]:
    """Keep the model's own classifier (same task: the target's classes are among the source's); returns its path.

    With `classes`, only the outputs for those classes stay, in their order, matched by name against
    `source_classes`; a class the source does not have is a `ValueError` naming it. Without them (a display
    skeleton) the classifier stays whole. Auxiliary heads are switched off, as `replace_head` does.
    """
    paths = declared_classifiers(model)[1:]
    paths.insert(0, find_classifier(model))
    _drop_aux_heads(model)
    if classes is None:
        return paths
    problem = missing_source_classes(source_classes or [], classes)
    if problem:
        raise ValueError(problem)
    index = {name: i for i, name in enumerate(source_classes or [])}
    rows = [index[c] for c in classes]
    for path in paths:
        old = model.get_submodule(path)
        kept = build_head(HeadSpec(), _in_features(old), len(rows), conv=isinstance(old, nn.Conv2d))
        kept.to(device=old.weight.device, dtype=old.weight.dtype)
        with torch.no_grad():
            kept.weight.copy_(old.weight[rows])
            if old.bias is not None:
                kept.bias.copy_(old.bias[rows])
            else:
                kept.bias = None
        _set_submodule(model, path, kept)
    if hasattr(model, "num_classes"):
        model.num_classes = len(rows)
    return paths


def describe_head(spec: HeadSpec, in_features: int, num_classes: int) -> str:
    """A one-line description such as ``512 -> 256 -> ReLU -> Dropout 0.2 -> 5``."""
    if spec.kind == "keep":
        return f"{in_features} -> the source's own classifier, its outputs for the data's {num_classes} classes"
    if spec.kind == "cosine":
        return f"{in_features} -> cosine similarity x learned scale -> {num_classes}"
    parts = [str(in_features)]
    act = ACTIVATIONS[spec.activation].__name__
    for h in spec.layer_sizes():
        parts += [str(h), act]
        if spec.dropout > 0:
            parts.append(f"Dropout {spec.dropout:g}")
    parts.append(str(num_classes))
    return " -> ".join(parts)
