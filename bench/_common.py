"""Shared pieces of the benchmarks: synthetic image folders, alternating timed runs, tables, and the bare
PyTorch loop the engine is measured against (what a person would write by hand, on the same data).

The machine these run on is shared and noisy, so every figure is a median over runs that alternate between
the engine and its baseline (ABBA order, so a slow spell hits both), and goals are ratios, never seconds.
"""

from __future__ import annotations

import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from torch import nn  # noqa: E402

# ---------------------------------------------------------------- data


def write_image_folder(root: Path, classes: int, per_class: int, size: int, seed: int = 0,
                       fmt: str = "png", height: int | None = None) -> Path:
    """root/<class>/<i>.<fmt>: a shape per class on a noisy background, so a model can learn something;
    `size` wide and `height` (default `size`) high."""
    rng = random.Random(seed)
    height = height or size
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            im = Image.effect_noise((size, height), rng.uniform(20, 60)).convert("RGB")
            d = ImageDraw.Draw(im)
            r = rng.uniform(0.2, 0.4) * min(size, height)
            cx, cy = rng.uniform(0.35, 0.65) * size, rng.uniform(0.35, 0.65) * height
            fill = tuple(rng.randrange(120, 256) for _ in range(3))
            sides = 3 + c  # class c: a polygon with 3 + c corners
            pts = [(cx + r * math.cos(2 * math.pi * k / sides + c), cy + r * math.sin(2 * math.pi * k / sides + c))
                   for k in range(sides)]
            d.polygon(pts, fill=fill)
            im.save(folder / f"{i:04d}.{fmt}", quality=90) if fmt == "jpg" else im.save(folder / f"{i:04d}.{fmt}")
    return root


def engine_project(base: Path, arch: str, image_size: int, preset: str, *, epochs: int, batch_size: int,
                   device: str = "cpu", last_blocks: int = 1, augment: str = "none"):
    """A project on base/train and base/val (written by `write_image_folder`), random initial weights."""
    from engine.project import Project

    p = Project(name="bench", base_dir=base)
    for key, value in {
        "model.arch": arch, "model.weights": "none", "data.train": "train", "data.val": "val",
        "data.image_size": image_size, "data.augment": augment, "freeze.preset": preset,
        "freeze.last_blocks": last_blocks, "head.kind": "linear", "train.epochs": epochs,
        "train.batch_size": batch_size, "train.optimizer": "adamw", "train.scheduler": "cosine",
        "train.device": device, "train.amp": True, "train.out_dir": str(base / "runs"),
    }.items():
        p.set(key, value)
    return p


# ---------------------------------------------------------------- the bare loop


@dataclass
class BareResult:
    seconds: float            # the whole call: model, data, every epoch
    train_seconds: list[float]  # per epoch, training batches only
    images: int                # training images per epoch
    model: nn.Module


def _frozen_prefix(model: nn.Module, preset: str, last_blocks: int) -> list[nn.Module]:
    """The modules a person freezes by hand on a torchvision ResNet: all but `fc` (feature extraction), all
    but the last `last_blocks` of layer1..layer4 and fc (last blocks), nothing (full)."""
    if preset == "full":
        return []
    names = [n for n, _ in model.named_children()]
    keep = ["fc"] if preset == "feature_extraction" else ["fc", *[f"layer{i}" for i in range(5 - last_blocks, 5)]]
    return [m for n, m in model.named_children() if n not in keep and n in names]


def bare_fit(base: Path, arch: str, image_size: int, preset: str, *, epochs: int, batch_size: int,
             device: str = "cpu", amp: torch.dtype | None = None, channels_last: bool = False,
             last_blocks: int = 1, lr: float = 1e-3, backbone_lr_mult: float = 0.1, weight_decay: float = 1e-4,
             num_workers: int = 0, seed: int = 0) -> BareResult:
    """Fine-tune a torchvision ResNet on base/train, validate on base/val each epoch: plain PyTorch.

    The same model, frozen modules (their BatchNorm in eval mode), transforms, AdamW groups (head at `lr`,
    backbone at ``lr * backbone_lr_mult``), per-batch cosine schedule and loss as the engine's project.
    """
    import torchvision
    from torchvision.transforms import v2

    start = time.perf_counter()
    torch.manual_seed(seed)
    dev = torch.device(device)
    model = torchvision.models.get_model(arch, weights=None)
    model.fc = nn.Linear(model.fc.in_features, len(list((base / "train").iterdir())))
    frozen = _frozen_prefix(model, preset, last_blocks)
    for m in frozen:
        m.requires_grad_(False)
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    resize = max(image_size, round(image_size * 256 / 224))
    tf = v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(image_size), v2.ToImage(),
                     v2.ToDtype(torch.float32, scale=True),
                     v2.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    train_set = torchvision.datasets.ImageFolder(str(base / "train"), tf)
    val_set = torchvision.datasets.ImageFolder(str(base / "val"), tf)
    g = torch.Generator()
    g.manual_seed(seed)
    kw: dict[str, Any] = {}
    if num_workers:
        kw = {"multiprocessing_context": "forkserver", "persistent_workers": True, "prefetch_factor": 4}
    pin = dev.type == "cuda"
    train = torch.utils.data.DataLoader(train_set, batch_size, shuffle=True, generator=g, num_workers=num_workers,
                                        pin_memory=pin, **kw)
    val = torch.utils.data.DataLoader(val_set, batch_size, num_workers=num_workers, pin_memory=pin, **kw)
    head = list(model.fc.parameters())
    head_ids = {id(p) for p in head}
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head, "lr": lr}]
    if backbone:
        groups.append({"params": backbone, "lr": lr * backbone_lr_mult})
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(train))
    loss_fn = nn.CrossEntropyLoss()
    cast = (lambda: torch.autocast(dev.type, dtype=amp)) if amp is not None else nullcontext
    mf = torch.channels_last if channels_last else torch.contiguous_format
    train_seconds = []
    for _ in range(epochs):
        if preset == "feature_extraction":
            model.eval()
            model.fc.train()
        else:
            model.train()
            for m in frozen:
                m.eval()
        t0 = time.perf_counter()
        for x, y in train:
            x, y = x.to(dev, non_blocking=True, memory_format=mf), y.to(dev, non_blocking=True)
            with cast():
                out = model(x)
            loss = loss_fn(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss.item()
        train_seconds.append(time.perf_counter() - t0)
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val:
                x, y = x.to(dev, non_blocking=True, memory_format=mf), y.to(dev, non_blocking=True)
                with cast():
                    correct += int((model(x).argmax(1) == y).sum())
    return BareResult(time.perf_counter() - start, train_seconds, len(train_set), model)


# ---------------------------------------------------------------- timing and tables


def alternate(runs: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[Any]]:
    """Call each function `repeats` times, in ABBA order, after `warmup` untimed rounds; returns what each
    call returned (a float of seconds, or anything the caller times itself)."""
    names = list(runs)
    for _ in range(warmup):
        for n in names:
            runs[n]()
    out: dict[str, list[Any]] = {n: [] for n in names}
    for r in range(repeats):
        for n in (names if r % 2 == 0 else names[::-1]):
            out[n].append(runs[n]())
    return out


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds on the clock
    cpu: float   # seconds of CPU this process used (all its threads): what the run cost, less sensitive to
                 # other processes competing for the cores than the wall clock


def timed(fn: Callable[[], Any]) -> Callable[[], Timing]:
    def run() -> Timing:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        return Timing(time.perf_counter() - t0, time.process_time() - c0)
    return run


def set_threads(n: int) -> None:
    """The same intra-op threads for the engine and its baseline (1 is steadiest on a busy 2-core machine)."""
    torch.set_num_threads(n)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, numbers right-aligned."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"
        return str(v)
    body = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    out = [line, rule]
    for r, raw in zip(body, rows, strict=True):
        out.append("  ".join(c.rjust(w) if isinstance(v, (int, float)) else c.ljust(w)
                             for c, v, w in zip(r, raw, widths, strict=True)))
    return "\n".join(out)


def machine() -> str:
    """CPU model, cores visible to torch, torch version: the line every report starts with."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{model}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} "
            f"threads{gpu}, python {platform.python_version()}")
