"""Architectures and weight sources: a thin layer over torchvision's own registry, plus the demo CNN.

Names go in as strings and come back as facts (`arch_info`) or models (`build_model`). Pretrained weights
are read only from the local torch hub cache (``torch.hub.get_dir()/checkpoints``, honouring TORCH_HOME):
Thaw never downloads anything by itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from engine.errors import ProjectError, WeightsError
from engine.io.weights import KINDS_OF_FILE, SUFFIXES, load_into, load_state_dict, shapes
from engine.model import digits_cnn as demo_cnn
from engine.model import timm_zoo
from engine.model.fitting import conformed, file_shapes, misfit
from engine.model.heads import classifier_paths
from engine.model.layers import model_names

DEMO_ARCH = demo_cnn.DEMO_ARCH
is_timm = timm_zoo.is_timm

# Families whose positional embeddings / partitions fix the input size to the weights' size.
_FIXED_SIZE_FAMILIES = ("vision_transformer", "maxvit")
# Families whose forward returns auxiliary logits in train mode; built with the aux heads the weights have.
_AUX_FAMILIES = ("googlenet", "inception")


@dataclass(frozen=True)
class Preprocess:
    """What the weights expect: resize the short side, centre-crop, normalise."""

    resize: int
    crop: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class ArchInfo:
    """Facts about an architecture and its default weights, known without building the model."""

    name: str
    family: str
    num_params: int | None
    imagenet_acc1: float | None
    weights_name: str | None
    weights_file: str | None
    weights_cached: bool
    weights_size_bytes: int | None
    preprocess: Preprocess
    min_size: int
    fixed_size: int | None
    gflops: float | None = None          # one image's forward pass at the weights' input size

    @property
    def weights_path(self) -> Path:
        """Where the pretrained file is (or would be) on this machine."""
        return pretrained_path(self.name)


@lru_cache(maxsize=1)
def _torchvision_names() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def list_architectures(timm: bool = False) -> list[str]:
    """The torchvision image classifiers and the demo CNN, sorted by name; with `timm` (and timm installed),
    then timm's pretrained models ("timm:...")."""
    names = sorted((*_torchvision_names(), DEMO_ARCH))
    return names + list(timm_zoo.names()) if timm and timm_zoo.available() else names


def is_known_arch(name: str) -> bool:
    return name == DEMO_ARCH or name in _torchvision_names() or timm_zoo.is_known(name)


def arch_problem(name: str) -> str | None:
    """Why `name` is no architecture Thaw can build (None when it is one)."""
    if is_known_arch(name):
        return None
    if is_timm(name) and not timm_zoo.available():
        return f"{name} is a timm model, and timm is not installed: pip install \".[timm]\" (or pip install timm)"
    more = " (with --timm for timm's)" if is_timm(name) else ""
    return f"unknown architecture {name!r}; known names: see `python main.py models`{more}"


def _check_known(name: str) -> None:
    problem = arch_problem(name)
    if problem:
        raise ProjectError("model.arch", problem)


def checkpoints_dir() -> Path:
    """torch hub's checkpoint folder, read at call time so TORCH_HOME set later still counts."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _default_weights(name: str) -> Any:
    from torchvision.models import get_model_weights

    return get_model_weights(name).DEFAULT


def family(name: str) -> str:
    """The torchvision module that builds `name` ("resnet", "vision_transformer", ...): its family; timm's
    modules say so ("resnet (timm)"), the demo's is "thaw"."""
    if name == DEMO_ARCH:
        return "thaw"
    if is_timm(name):
        return timm_zoo.family(name)
    from torchvision.models import get_model_builder

    return get_model_builder(name).__module__.rsplit(".", 1)[-1]


def arch_info(name: str) -> ArchInfo:
    """Size, accuracy, offline availability and preprocessing of `name`'s default weights; builds nothing."""
    _check_known(name)
    if name == DEMO_ARCH:
        return _demo_info()
    if is_timm(name):
        return _timm_info(name)
    w = _default_weights(name)
    meta = w.meta
    t = w.transforms()
    path = pretrained_path(name)
    file_name = path.name
    cached = path.is_file()
    size = path.stat().st_size if cached else (round(meta["_file_size"] * 1024 * 1024) if "_file_size" in meta
                                               else None)
    fam = family(name)
    min_size = int(max(meta.get("min_size", (1, 1))))
    acc = meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
    return ArchInfo(
        name=name,
        family=fam,
        num_params=meta.get("num_params"),
        imagenet_acc1=float(acc) if acc is not None else None,
        weights_name=str(w),
        weights_file=file_name,
        weights_cached=cached,
        weights_size_bytes=size,
        preprocess=Preprocess(
            resize=int(t.resize_size[0]),
            crop=int(t.crop_size[0]),
            mean=tuple(float(v) for v in t.mean),
            std=tuple(float(v) for v in t.std),
            interpolation=t.interpolation.value,
        ),
        min_size=min_size,
        fixed_size=min_size if fam in _FIXED_SIZE_FAMILIES else None,
        gflops=float(meta["_ops"]) if "_ops" in meta else None,
    )


def _timm_info(name: str) -> ArchInfo:
    resize, crop, mean, std, interpolation = timm_zoo.preprocess_values(name)
    path = timm_zoo.weights_file(name)
    min_size, fixed = timm_zoo.sizes(name)
    return ArchInfo(name=name, family=timm_zoo.family(name), num_params=timm_zoo.num_params(name),
                    imagenet_acc1=None, weights_name=timm_zoo.full_name(name)[len(timm_zoo.PREFIX):],
                    weights_file=path.name if path else "model.safetensors", weights_cached=path is not None,
                    weights_size_bytes=path.stat().st_size if path else None,
                    preprocess=Preprocess(resize, crop, mean, std, interpolation), min_size=min_size, fixed_size=fixed)


def source_classes(arch: str) -> list[str]:
    """The class names behind the pretrained weights' outputs, in output order (ImageNet's for torchvision)."""
    _check_known(arch)
    if arch == DEMO_ARCH:
        return [str(c) for c in _demo_meta().get("classes", ())]
    if is_timm(arch):
        classes = timm_zoo.source_classes(arch)
        if classes is None:
            raise ProjectError("head.kind", f"the class names of {arch}'s weights are not known; choose a new head")
        return classes
    return [str(c) for c in _default_weights(arch).meta["categories"]]


def _demo_meta() -> dict[str, Any]:
    return demo_cnn.load_meta() if demo_cnn.SOURCE_META.is_file() else {}


def _demo_info() -> ArchInfo:
    meta = _demo_meta()
    size = int(meta.get("input_size", demo_cnn.INPUT_SIZE))
    path = demo_cnn.SOURCE_WEIGHTS
    cached = path.is_file()
    num_params = sum(p.numel() for p in demo_cnn.DigitsCNN(num_classes=_demo_num_classes(meta)).parameters())
    return ArchInfo(
        name=DEMO_ARCH,
        family="thaw",
        num_params=num_params,
        imagenet_acc1=None,
        weights_name="digits 0-4 (shipped)",
        weights_file=path.name,
        weights_cached=cached,
        weights_size_bytes=path.stat().st_size if cached else None,
        preprocess=Preprocess(
            resize=size,
            crop=size,
            mean=tuple(float(v) for v in meta.get("mean", (0.5, 0.5, 0.5))),
            std=tuple(float(v) for v in meta.get("std", (0.5, 0.5, 0.5))),
            interpolation="bilinear",
        ),
        min_size=8,  # three 2x poolings
        fixed_size=None,
    )


def _demo_num_classes(meta: dict[str, Any]) -> int:
    return len(meta.get("classes", ())) or 5


def effective_image_size(info: ArchInfo, requested: int) -> tuple[int, list[str]]:
    """The input size this architecture will get for a `requested` size, and why it differs (if it does)."""
    if info.fixed_size is not None and requested != info.fixed_size:
        cost = f", about {info.gflops:,.0f} GFLOPs per image" if info.gflops else ""
        return info.fixed_size, [f"{info.name} needs {info.fixed_size} px inputs exactly; using "
                                 f"{info.fixed_size} instead of {requested} ({(info.fixed_size / requested) ** 2:.1f}x "
                                 f"the pixels{cost})"]
    if requested < info.min_size:
        return info.min_size, [f"{info.name} needs inputs of at least {info.min_size} px; "
                               f"raised the image size from {requested} to {info.min_size}"]
    return requested, []


def _builder_kwargs(name: str, family: str, weights: Any, pretrained: bool) -> dict[str, Any]:
    """The constructor arguments torchvision would use for these weights (without letting it download)."""
    kw: dict[str, Any] = {"num_classes": len(weights.meta["categories"])}
    if family == "vision_transformer":
        kw["image_size"] = weights.meta["min_size"][0]
    elif family == "maxvit":
        kw["input_size"] = weights.meta["min_size"]
    elif family in _AUX_FAMILIES:
        kw.update(aux_logits=True, init_weights=not pretrained, transform_input=pretrained)
    return kw


def build_model(arch: str, weights: str = "none", *, base_dir: str | os.PathLike | None = None,
                notes: list[str] | None = None) -> nn.Module:
    """Build `arch` with its original head and the chosen weights: "none", "pretrained" or a file path.

    Relative file paths resolve against `base_dir`. Head tensors in a file that do not fit (a file saved
    from an earlier fine-tune with another head) are skipped, with a line appended to `notes`.
    """
    _check_known(arch)
    path = None if weights == "none" else _weights_path(arch, weights, base_dir)
    if weights == "pretrained" and not path.is_file():
        raise WeightsError(_missing_pretrained_message(arch, path))
    if weights == "pretrained" and is_timm(arch):  # timm adapts its own weights (`timm_zoo.create`), read safely
        return timm_zoo.create(arch, load_state_dict(path, notes=notes))
    model = _bare(arch, pretrained=weights == "pretrained")
    if path is None:
        return model
    tolerate = _tolerated(weights, classifier_paths(model))
    said: list[str] = []
    own = model.state_dict()
    state = conformed(family(arch), load_state_dict(path, notes=said), own, path.name, said)
    problem = misfit(arch, str(path), shapes(own), shapes(state), tolerate)
    if problem:
        raise WeightsError(problem)
    skipped = load_into(model, state, path.name, tolerate=tolerate, notes=said)
    if notes is not None:
        notes += said
    if skipped and notes is not None:
        notes.append(f"{path.name}: skipped {len(skipped)} classifier tensors that do not fit "
                     f"({', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''}); the head is replaced anyway")
    return model


def _bare(arch: str, pretrained: bool) -> nn.Module:
    """`arch` with its original head and random weights (built as its pretrained weights need it)."""
    if arch == DEMO_ARCH:
        return demo_cnn.DigitsCNN(num_classes=_demo_num_classes(_demo_meta()))
    if is_timm(arch):
        return timm_zoo.create(arch)
    from torchvision.models import get_model_builder

    return get_model_builder(arch)(weights=None, **_builder_kwargs(arch, family(arch), _default_weights(arch), pretrained))


class _AllocateOnMeta(TorchFunctionMode):
    """Send the allocations that hold weights to the meta device, but leave small computations alone.

    ``with torch.device("meta")`` sends every factory there, which breaks RegNet: its constructor computes
    the stage widths with ``torch.arange(...).tolist()``. Leftover CPU tensors are moved afterwards.

    The initialisers' in-place ops on meta tensors (``normal_``, ``zero_``...) change no data, so they are
    skipped: run, they go through torch's Python reference ops, which, while another thread runs
    ``torch.export`` (a process-wide flag), edit a process-wide dict unguarded and fail now and again.
    """

    _ALLOCATORS = frozenset({torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in self._ALLOCATORS and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        else:
            target = args[0] if args else kwargs.get("tensor")  # nn.init passes it by name
            if _in_place(func) and isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


_FILLS = frozenset({"normal_", "uniform_", "zero_", "fill_", "copy_", "mul_", "add_", "sub_", "div_", "clamp_",
                    "erfinv_", "exponential_", "random_", "bernoulli_", "log_normal_", "fill_diagonal_"})


def _in_place(func) -> bool:
    """An op that only writes values (the initialisers): not one that changes a shape or a flag."""
    name = getattr(func, "__name__", "")
    return name in _FILLS or (getattr(func, "__module__", "") == "torch.nn.init" and name.endswith("_"))


def build_skeleton(arch: str) -> nn.Module:
    """`arch` with its original head on the meta device: the full structure, no memory, no weights."""
    with _AllocateOnMeta():
        model = build_model(arch, "none")
    return model.to("meta")


def pretrained_path(arch: str) -> Path:
    """Where `arch`'s pretrained file is (or would be) on this machine: the torch hub cache, or the demo's own.
    (Not through `arch_info`: counting the demo's parameters would draw random numbers.)"""
    if arch == DEMO_ARCH:
        return demo_cnn.SOURCE_WEIGHTS
    if is_timm(arch):
        return timm_zoo.weights_file(arch) or timm_zoo.hf_cache_dir() / "(not cached)" / arch[len(timm_zoo.PREFIX):]
    return checkpoints_dir() / os.path.basename(urlparse(default_weights_url(arch)).path)


def _weights_path(arch: str, weights: str, base_dir: str | os.PathLike | None) -> Path:
    """The file `weights` ("pretrained" or a path, relative to `base_dir`) names."""
    if weights == "pretrained":
        return pretrained_path(arch)
    path = Path(os.path.expanduser(weights))
    return Path(base_dir) / path if not path.is_absolute() and base_dir is not None else path


def _tolerated(weights: str, classifier: Sequence[str]) -> tuple[str, ...]:
    """What a weights file may lack or hold in another shape: nothing for the pretrained file; a file of one's
    own may hold another head (from an earlier fine-tune), which is replaced anyway."""
    return () if weights == "pretrained" else tuple(classifier)


@dataclass(frozen=True)
class SkeletonFacts:
    """What the structure of an architecture (with its original head) says, without weights or memory."""

    shapes: dict[str, tuple[int, ...]]   # state_dict name -> shape
    names: frozenset[str]                # module paths ("" is the root) and tensor names
    classifier_paths: tuple[str, ...]    # the classifier and any auxiliary heads


@lru_cache(maxsize=128)
def skeleton_facts(arch: str) -> SkeletonFacts:
    """`SkeletonFacts` of `arch`, built once per architecture on the meta device."""
    model = build_skeleton(arch)
    return SkeletonFacts({k: tuple(v.shape) for k, v in model.state_dict().items()},
                         frozenset(model_names(model)), tuple(classifier_paths(model)))


def weights_problem(arch: str, weights: str, base_dir: str | os.PathLike | None = None) -> str | None:
    """Why `build_model(arch, weights)` would fail (None when it would load): the pretrained file is not on
    this machine, or the file is missing, not a weights file, unreadable, or holds tensors that do not fit.
    Reads only the file's header where the format allows (safetensors), once per file version."""
    if weights == "none":
        return None
    path = _weights_path(arch, weights, base_dir)
    if weights == "pretrained":
        return None if path.is_file() else _missing_pretrained_message(arch, path)
    if not path.exists() and path.suffix.lower() not in SUFFIXES:
        return f"must be 'pretrained', 'none' or {KINDS_OF_FILE}, not {weights!r}"
    facts = skeleton_facts(arch)
    return file_problem(arch, path, _tolerated(weights, facts.classifier_paths))


def file_problem(arch: str, path: Path, tolerate: tuple[str, ...] = ()) -> str | None:
    """Why the weights file `path` cannot be loaded into `arch` (None when it can): not there, a folder, not
    a weights file, unreadable, or tensors that do not fit (those under `tolerate` aside)."""
    found = file_shapes(path)  # a folder, nothing there, not weights: the error says which
    if isinstance(found, WeightsError):
        return str(found)
    facts = skeleton_facts(arch)
    return misfit(arch, str(path), facts.shapes, conformed(family(arch), found, facts.shapes, path.name, []), tolerate)


def default_weights_url(arch: str) -> str:
    """Where torchvision publishes `arch`'s default pretrained file."""
    return str(_default_weights(arch).url)


def _missing_pretrained_message(arch: str, path: Path) -> str:
    if arch == DEMO_ARCH:
        return (f"the demo's source weights {path} are missing; regenerate them with "
                "`python -m engine.demo.source`, or use weights = \"none\"")
    if is_timm(arch):
        name = timm_zoo.full_name(arch)[len(timm_zoo.PREFIX):]
        return (f"pretrained weights for {arch} are not on this machine: Thaw looks in "
                f"{timm_zoo.expected_location(arch)} and never downloads them. On a machine online, "
                f"`python -c \"import timm; timm.create_model('{name}', pretrained=True)\"` fills its Hugging Face "
                "cache: copy that cache's folder of the model here; or set model.weights to its model.safetensors "
                "file, or to \"none\"")
    url = default_weights_url(arch)
    return (f"pretrained weights for {arch} are not on this machine: expected {path}. Thaw never downloads "
            f"them by itself; copy {path.name} (from {url}) into {path.parent}, or download it with "
            f"`python main.py fetch-weights {arch}` (in the window: Model tab, Download), or set model.weights to "
            "\"none\" or to a weights file")


# What a new project starts from, in this order, where the weights are on this machine.
_STARTING_POINTS = ("resnet18", "resnet50", "efficientnet_b0", "mobilenet_v3_large", "convnext_tiny", "vit_b_16")


def starting_point() -> tuple[dict[str, Any], str]:
    """Settings for a new project that can run on this machine as it is, and a line saying why these: a
    common architecture whose pretrained weights are here, else the demo's CNN (its weights ship with Thaw)."""
    arch = next((a for a in _STARTING_POINTS if pretrained_path(a).is_file()), DEMO_ARCH)
    settings = {"model.arch": arch, "model.weights": "pretrained",
                "data.image_size": arch_info(arch).preprocess.crop}
    if arch == DEMO_ARCH:
        why = ("starts from the demo's small CNN with its shipped weights: no other pretrained weights are on this "
               f"machine (import or download them on the Model tab, or copy them into {checkpoints_dir()}; or choose "
               "a weights file)")
    else:
        why = f"starts from {arch} with its pretrained weights, found on this machine"
    return settings, why
