"""What watching which layers learn costs: a training step with the activity measurement (`engine.train.activity`)
against the same step without it, for ResNet-18 and ResNet-50 fully trainable (the costliest case: every tensor is
copied before the step), built by the engine, AdamW as the engine makes it.

Plain and measured steps alternate on the same model and batch (ABBA), timed in process CPU time (steadier than
wall time on a shared machine). The mean step time with a measurement every N steps is then
(N - 1) plain steps and one measured one: ratio = 1 + (measured - plain) / (N * plain).
Headline: that ratio for N = 50 (goal <= 1.03), per architecture.

    .venv/bin/python bench/activity_cost.py [--archs resnet18 resnet50] [--size 112] [--batch 8] [--rounds 8]
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import machine, median, set_threads, table
from torch import nn


def build(arch: str):
    from engine.model.assemble import assemble
    from engine.model.checklist import Checklist
    from engine.model.schedule import Schedule
    from engine.project import Project
    from engine.train.activity import Activity
    from engine.train.stages import groups_for

    p = Project(name="bench")
    for key, value in {"model.arch": arch, "model.weights": "none", "freeze.preset": "full"}.items():
        p.set(key, value)
    a = assemble(p, 10, "cpu")
    schedule = Schedule.of_project(Checklist(a.model, a.head_paths), p)
    opt = torch.optim.AdamW(groups_for(a.model, schedule.plan_at(0), schedule.lanes, 1e-4), lr=1e-3)
    return a.model, opt, Activity(a.model, schedule.lanes, every=1)


def step(model, opt, x, y, activity=None) -> float:
    """One training step; its process CPU seconds."""
    start = time.process_time()
    model.train()
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if activity is not None:
        activity.before(opt)
    opt.step()
    if activity is not None:
        activity.after(1, 1)
    return time.process_time() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=["resnet18", "resnet50"])
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)
    print(machine())
    torch.manual_seed(0)
    x, y = torch.randn(args.batch, 3, args.size, args.size), torch.randint(0, 10, (args.batch,))
    rows, headline = [], []
    for arch in args.archs:
        model, opt, activity = build(arch)
        step(model, opt, x, y)  # warm-up: allocator, optimizer state
        step(model, opt, x, y, activity)
        plain, measured = [], []
        for r in range(args.rounds):
            pair = ((plain, None), (measured, activity))
            for times, act in (pair if r % 2 == 0 else pair[::-1]):
                times.append(step(model, opt, x, y, act))
        p, m = median(plain), median(measured)
        ratio = 1 + (m - p) / (args.every * p)
        params = sum(q.numel() for q in model.parameters())
        rows.append([arch, params, len(activity.names), p, m, m - p, ratio])
        headline.append(f"{arch} {ratio:.3f}")
    print(table(["arch", "params", "blocks", "plain step s", "measured step s", "measurement s",
                 f"mean step ratio, every {args.every}"], rows))
    print(f"{args.size} px, batch {args.batch}, everything trainable, AdamW, {args.rounds} alternating rounds, "
          f"{torch.get_num_threads()} thread(s), process CPU time, medians")
    print(f"headline: mean step time with activity every {args.every} steps / without: {', '.join(headline)} "
          f"(goal <= 1.03)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
