"""timm, the other model zoo people use, as an optional extra (``pip install ".[timm]"``), offline only.

A timm model is named ``timm:<name>`` in a project, e.g. ``timm:convnext_tiny`` (timm's default pretrained tag)
or ``timm:resnet50.a1_in1k`` (a tag of its own: the weights and their preprocessing differ between tags).
Pretrained weights come from the local Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME``/hub, read at call
time) or, for the few published only as a URL, from the torch hub cache; they are read with Thaw's safe loader
and handed to timm (`pretrained_cfg_overlay`), so timm adapts them as it would its own download. Nothing is
downloaded: ``HF_HUB_OFFLINE=1`` is set before huggingface_hub is imported (it reads it once, at import; set
later, a missing file costs 47 s of retries), by `engine/__init__.py` and here.

Everything else works as for torchvision: the preprocessing is timm's data config for the tag; the classifier
is the one timm's config names (`heads`); the blocks of the checklist are the first modules of timm's coarse
parameter groups (`group_matcher`), so "the last N blocks" means its stages as it does for torchvision.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from torch import nn

from engine.io.locations import RESOURCES
from engine.model.modpath import under

PREFIX = "timm:"
PARAMS_FILE = RESOURCES / "timm_params.json"  # parameter counts per pretrained name (`python -m ...timm_zoo`)
_HF_FILES = ("model.safetensors", "pytorch_model.bin")
_MIN_SIZE = 32  # timm does not say; its convolutional networks downsample 32x
PLACEHOLDER_CLASSES = 1000  # the classifier a model of head-less weights gets (`create`), replaced by Thaw's head


def is_timm(name: str) -> bool:
    return name.startswith(PREFIX)


def _timm() -> Any:
    """timm, imported offline (see the module's docstring); ImportError with the install line if missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import timm
    except ImportError:
        raise ImportError("timm models need timm: pip install \".[timm]\" (or pip install timm)") from None
    return timm


def available() -> bool:
    from importlib.util import find_spec

    return find_spec("timm") is not None


@lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """Every timm model with pretrained weights, by its full name with the tag, sorted ("timm:..." prefix)."""
    return tuple(PREFIX + n for n in _timm().list_models(pretrained=True))


def is_known(name: str) -> bool:
    if not is_timm(name) or not available():
        return False
    return _cfg(name) is not None


@lru_cache(maxsize=4096)
def _cfg(name: str) -> dict[str, Any] | None:
    """timm's pretrained config of the name (its default tag when it has none); None for an unknown name."""
    timm = _timm()
    base = name[len(PREFIX):]
    if not timm.is_model(base):
        return None
    try:
        cfg = timm.models.get_pretrained_cfg(base)
    except RuntimeError:  # an unknown tag of a known architecture
        return None
    return cfg.to_dict() if cfg is not None else {"architecture": base.split(".")[0]}


def full_name(name: str) -> str:
    """The name with the tag its weights are (``timm:convnext_tiny`` -> ``timm:convnext_tiny.in12k_ft_in1k``)."""
    cfg = _cfg(name) or {}
    return f"{PREFIX}{cfg['architecture']}.{cfg['tag']}" if cfg.get("tag") else name


def family(name: str) -> str:
    arch = (_cfg(name) or {}).get("architecture", name[len(PREFIX):].split(".")[0])
    return _timm().models.model_entrypoint(arch).__module__.rsplit(".", 1)[-1] + " (timm)"


def data_config(name: str) -> dict[str, Any]:
    """timm's preprocessing for the name's weights: input size, interpolation, mean, std, crop_pct."""
    cfg = _cfg(name) or {}
    return _timm().data.resolve_data_config(pretrained_cfg=cfg)


def preprocess_values(name: str) -> tuple[int, int, tuple[float, ...], tuple[float, ...], str]:
    """(resize, crop, mean, std, interpolation) as Thaw's `zoo.Preprocess` holds them; resize as timm computes
    it (crop / crop_pct, rounded down)."""
    dc = data_config(name)
    crop = int(dc["input_size"][-1])
    resize = int(math.floor(crop / float(dc.get("crop_pct") or 1.0)))
    interpolation = str(dc.get("interpolation") or "bilinear")
    interpolation = interpolation if interpolation in ("bilinear", "bicubic", "nearest") else "bilinear"
    return resize, crop, tuple(map(float, dc["mean"])), tuple(map(float, dc["std"])), interpolation


def sizes(name: str) -> tuple[int, int | None]:
    """(smallest input, the one input size it takes when fixed)."""
    cfg = _cfg(name) or {}
    size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    return (size, size) if cfg.get("fixed_input_size") else (_MIN_SIZE, None)


# ---------------------------------------------------------------- weights on this machine


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, from the environment now (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def cached_repos() -> set[str]:
    """The model repositories that have a folder in the cache (one directory listing)."""
    try:
        return {p.name[len("models--"):].replace("--", "/") for p in hf_cache_dir().iterdir()
                if p.name.startswith("models--")}
    except OSError:
        return set()


def weights_file(name: str, repos: set[str] | None = None) -> Path | None:
    """The cached pretrained file of the name, or None when it is not on this machine."""
    cfg = _cfg(name) or {}
    repo = cfg.get("hf_hub_id")
    if repo:
        if repo not in (cached_repos() if repos is None else repos):
            return None
        from huggingface_hub import try_to_load_from_cache

        for file_name in ([cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else _HF_FILES):
            found = try_to_load_from_cache(repo, file_name, cache_dir=hf_cache_dir())
            if isinstance(found, str):
                return Path(found)
        return None
    if cfg.get("url"):
        from engine.model.zoo import checkpoints_dir

        path = checkpoints_dir() / os.path.basename(cfg["url"].split("?")[0])
        return path if path.is_file() else None
    return None


def expected_location(name: str) -> str:
    """Where the pretrained file is looked for, in words, for the message that says it is missing."""
    cfg = _cfg(name) or {}
    if cfg.get("hf_hub_id"):
        folder = hf_cache_dir() / ("models--" + cfg["hf_hub_id"].replace("/", "--"))
        return f"the Hugging Face cache ({folder}, repository {cfg['hf_hub_id']})"
    if cfg.get("url"):
        from engine.model.zoo import checkpoints_dir

        return f"{checkpoints_dir()} as {os.path.basename(cfg['url'])} (from {cfg['url']})"
    return "nowhere: timm publishes no weights for it"


@lru_cache(maxsize=1)
def _param_table() -> dict[str, int]:
    try:
        return dict(json.loads(PARAMS_FILE.read_text(encoding="utf-8"))["params"])
    except (OSError, ValueError, KeyError):
        return {}


def num_params(name: str, count: bool = False) -> int | None:
    """Parameters with the source's head: from the table shipped with Thaw, else counted on the meta device
    when `count` (a build of the structure, a fraction of a second)."""
    known = _param_table().get(full_name(name)[len(PREFIX):])
    if known is not None or not count:
        return known
    return _counted(name)


@lru_cache(maxsize=256)
def _counted(name: str) -> int:
    from engine.model.zoo import build_skeleton

    return sum(p.numel() for p in build_skeleton(name).parameters())


# ---------------------------------------------------------------- models


def create(name: str, state: dict[str, Any] | None = None) -> nn.Module:
    """The model with the source's head: random, or the pretrained `state` adapted by timm as its own.

    Weights published without a classifier (self-supervised ones: DINO, MAE, ...; ``num_classes`` 0) would
    give a model whose classifier is an Identity, and the last Linear inside a block would pass for it: the
    model gets a placeholder classifier instead, for Thaw's head to replace as anywhere else."""
    timm = _timm()
    base = name[len(PREFIX):]
    kwargs = {"num_classes": PLACEHOLDER_CLASSES} if (_cfg(name) or {}).get("num_classes") == 0 else {}
    if state is None:
        return timm.create_model(base, pretrained=False, **kwargs)
    return timm.create_model(base, pretrained=True, pretrained_cfg_overlay={"state_dict": state}, **kwargs)


def source_classes(name: str) -> list[str] | None:
    """The class names of the weights' outputs when timm knows them (ImageNet subsets), short as torchvision's."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(_cfg(name) or {})
    if subset is None:
        return None
    return [d.split(",")[0].strip() for d in ImageNetInfo(subset).label_descriptions()]


def blocks(model: nn.Module, heads: tuple[str, ...], norms: tuple[type, ...]) -> list[str]:
    """The checklist's blocks: for each of timm's coarse parameter groups, the highest module that holds its
    first parameter and nothing of another group (ResNet ``layer1``, ViT ``blocks.0``, ConvNeXt ``stages.0``).
    Groups of the head and lone normalisation layers are left out, as for torchvision."""
    from timm.models import group_parameters

    groups = group_parameters(model, model.group_matcher(coarse=True))
    owner = {p: i for i, names_ in enumerate(groups.values()) for p in names_}
    modules = dict(model.named_modules())
    found: list[str] = []
    for i, names_ in enumerate(groups.values()):
        for first in names_:
            path = _highest_own(first, i, owner, modules)
            if path:
                break
        else:
            continue
        if under(path, heads) or any(under(h, (path,)) for h in heads) or isinstance(modules[path], norms):
            continue
        found.append(path)
    return found


def _highest_own(param: str, group: int, owner: dict[str, int], modules: dict[str, nn.Module]) -> str:
    """The highest module above `param` whose parameters all belong to `group` ("" when none is)."""
    parts = param.split(".")[:-1]
    for depth in range(1, len(parts) + 1):
        path = ".".join(parts[:depth])
        held = [f"{path}.{n}" for n, _ in modules[path].named_parameters()]
        if held and all(owner.get(n) == group for n in held):
            return path
    return ""


if __name__ == "__main__":  # the parameter table Thaw ships: a structure build per name on the meta device
    import timm

    table = {n[len(PREFIX):]: _counted(n) for n in names()}
    PARAMS_FILE.write_text(json.dumps({"timm_version": timm.__version__, "params": table}, sort_keys=True,
                                      separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {PARAMS_FILE} ({len(table)} models)")
