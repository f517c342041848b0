"""Training step on the CPU: float32 against channels_last, bfloat16 autocast and both (and `torch.compile`
with `--compile`), for the three recipes, to decide what a CPU run should use by default.

ResNet-18 (random weights), a batch of `--batch` images at `--size` px, AdamW on the trainable parameters,
frozen modules' BatchNorm in eval mode (as Thaw freezes): feature extraction = the backbone under `no_grad`
(what building the feature cache costs) plus the head's step; last block = layer4 and the head trained; full =
everything. One step is forward, loss, backward and the optimizer; each variant's steps are timed by this
thread's CPU time (one torch thread, so CPU time is the step's cost whatever else runs on the machine), the
variants alternating step by step after warm-up steps. Reported per recipe: ms per step and the ratio
float32 / variant (above 1: the variant is faster).

    .venv/bin/python bench/cpu_formats.py [--steps 6] [--size 128] [--batch 16] [--compile]
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import nullcontext

import torch
import torchvision
from _common import machine, median, table
from torch import nn

RECIPES = ("feature_extraction", "last_blocks", "full")


def make_step(recipe: str, channels_last: bool, bf16: bool, compiled: bool, size: int, batch: int):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    backbone = nn.Sequential(*list(model.children())[:-1], nn.Flatten())
    head = model.fc
    trained = {"feature_extraction": [], "last_blocks": [model.layer4], "full": [model]}[recipe]
    model.requires_grad_(recipe == "full")
    for m in trained:
        m.requires_grad_(True)
    head.requires_grad_(True)
    model.train()
    for m in model.modules():  # frozen BatchNorm in eval mode, as Thaw freezes
        if isinstance(m, nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(batch, 3, size, size).to(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else nullcontext

    def forward(x: torch.Tensor) -> torch.Tensor:
        if recipe == "feature_extraction":
            with torch.no_grad():
                features = backbone(x)
            return head(features.float())
        return model(x)

    run = torch.compile(forward) if compiled else forward

    def step() -> None:
        with cast():
            loss = nn.functional.cross_entropy(run(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def make_full_step(arch: str, channels_last: bool, bf16: bool, size: int, batch: int):
    """The full fine-tune of `arch` (every parameter trained, SGD with momentum as Thaw's default)."""
    from engine.model import zoo

    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = zoo.build_model(arch, "none").train().to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size).to(memory_format=fmt)
    y = torch.randint(0, 2, (batch,))  # every head has at least two classes

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def alternate(steps: dict, n: int) -> dict[str, float]:
    """ms per step of each variant: `n` steps each, the order reversed every other round (medians of CPU time)."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(n):
        for name in (list(steps) if i % 2 == 0 else list(steps)[::-1]):
            t0 = time.thread_time()
            steps[name]()
            times[name].append(time.thread_time() - t0)
    return {name: 1000 * median(ts) for name, ts in times.items()}


def by_architecture(archs: list[str], variants: dict, args) -> int:
    rows = []
    for arch in archs:
        steps = {name: make_full_step(arch, cl, bf, args.size, args.batch) for name, (cl, bf, _) in variants.items()}
        for step in steps.values():
            for _ in range(args.warmup):
                step()
        ms = alternate(steps, args.steps)
        rows.append([arch, ms["float32"], *(ms["float32"] / ms[n] for n in list(variants)[1:])])
        print(f"  {arch}: " + ", ".join(f"{n} {v:.0f} ms" for n, v in ms.items()), flush=True)
    print(table(["architecture (full fine-tune)", "float32 ms (CPU)", *(f"{n} x" for n in list(variants)[1:])], rows))
    print(f"batch {args.batch} at {args.size} px, one torch thread, {args.steps} steps per variant alternating after "
          f"{args.warmup} warm-up steps, medians of this thread's CPU time (x = float32 time / variant time)")
    print("load average at end {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    names = list(variants)[1:]
    print("headline: " + "; ".join(
        f"{n} {min(r[1 + i] for r in rows):.2f}-{max(r[1 + i] for r in rows):.2f}x float32" for i, n in enumerate(names, 1)))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES))
    ap.add_argument("--compile", action="store_true", help="also torch.compile the float32 step")
    ap.add_argument("--archs", help="comma-separated architectures: the full fine-tune of each (not ResNet-18's recipes)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(machine(), "| cpu capability", torch.backends.cpu.get_cpu_capability(),
          "| load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()), flush=True)
    variants = {"float32": (False, False, False), "channels_last": (True, False, False),
                "bf16 autocast": (False, True, False), "channels_last + bf16": (True, True, False)}
    if args.archs:
        return by_architecture(args.archs.split(","), variants, args)
    if args.compile:
        variants["compiled float32"] = (False, False, True)
    rows, best = [], {}
    for recipe in args.recipes:
        steps, setup = {}, {}
        for name, (cl, bf, comp) in variants.items():
            t0 = time.thread_time()
            steps[name] = make_step(recipe, cl, bf, comp, args.size, args.batch)
            for _ in range(args.warmup):
                steps[name]()
            setup[name] = time.thread_time() - t0
        ms = alternate(steps, args.steps)
        for n in variants:
            rows.append([recipe, n, ms[n], ms["float32"] / ms[n], setup[n]])
        best[recipe] = max(ms, key=lambda n: ms["float32"] / ms[n])
        print(f"  {recipe}: " + ", ".join(f"{n} {v:.0f} ms" for n, v in ms.items()), flush=True)
    print(table(["recipe", "variant", "ms per step (CPU)", "float32 / variant", "set-up + warm-up CPU s"], rows))
    print(f"ResNet-18, batch {args.batch} at {args.size} px, one torch thread, {args.steps} steps per variant "
          f"alternating after {args.warmup} warm-up steps, medians of this thread's CPU time")
    print("load average at end {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    print("headline: " + "; ".join(
        f"{r}: fastest {best[r]} " + next(f"{row[3]:.2f}x float32" for row in rows if row[:2] == [r, best[r]])
        for r in args.recipes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
