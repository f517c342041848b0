"""Frozen layers cost less: one training step of ResNet-50 at 128 px with feature extraction, the last block
trainable, and full fine-tune, built by the engine (`engine.model.assemble`, `engine.train.stages.groups_for`).

Three figures per freeze preset:
- time of one step (forward, loss, backward, AdamW step), median of alternating rounds;
- bytes autograd saves for backward during the forward pass, counted with
  `torch.autograd.graph.saved_tensors_hooks` (distinct storages, parameters left out): a frozen prefix must
  save nothing, so feature extraction keeps only the head's input;
- peak memory of the first step (optimizer state included): the rise of the process's peak resident size
  over its size just before the step (Linux: the peak mark is reset through /proc/self/clear_refs), each
  preset in a fresh process; on CUDA also the rise of `torch.cuda.max_memory_allocated`.
Headline: the ratios full / feature extraction and full / last block.

    .venv/bin/python bench/frozen_cost.py [--arch resnet50] [--size 128] [--batch 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from _common import machine, median, set_threads, table
from torch import nn

PRESETS = ("feature_extraction", "last_blocks", "full")


def build(arch: str, preset: str, device: str):
    """The engine's model for this preset, its optimizer groups (AdamW as the engine makes them), a loss."""
    from engine.model.assemble import assemble
    from engine.model.checklist import Checklist
    from engine.model.schedule import Schedule
    from engine.project import Project
    from engine.train.stages import groups_for

    p = Project(name="bench")
    for key, value in {"model.arch": arch, "model.weights": "none", "freeze.preset": preset,
                       "freeze.last_blocks": 1, "head.kind": "linear"}.items():
        p.set(key, value)
    a = assemble(p, 10, device)
    schedule = Schedule.of_project(Checklist(a.model, a.head_paths), p)
    groups = groups_for(a.model, schedule.plan_at(0), schedule.lanes, 1e-4)
    return a, torch.optim.AdamW(groups, lr=1e-3), nn.CrossEntropyLoss()


def _train_mode(a) -> None:
    """As the engine trains: a fully frozen backbone runs in eval mode, else train mode with frozen BN in eval."""
    from engine.model.freezing import set_frozen_bn_eval

    if a.plan.frozen and all(not p.requires_grad for n, p in a.model.named_parameters()
                             if not any(n.startswith(h + ".") for h in a.head_paths)):
        a.model.eval()
        for h in a.head_paths:
            a.model.get_submodule(h).train()
    else:
        a.model.train()
        set_frozen_bn_eval(a.model, a.plan, a.head_paths)


def step(a, opt, loss_fn, x, y) -> None:
    _train_mode(a)
    loss = loss_fn(a.model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if x.device.type == "cuda":
        torch.cuda.synchronize()


def saved_bytes(a, x) -> int:
    """Bytes of activations autograd keeps for backward in one forward pass (parameters not counted)."""
    params = {p.untyped_storage().data_ptr() for p in a.model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = s.nbytes()
        return t

    _train_mode(a)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = a.model(x)
    del out
    return sum(seen.values())


def trainable(a) -> int:
    return sum(p.numel() for p in a.model.parameters() if p.requires_grad)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux: clear_refs 5); returns that RSS in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS") * 1024


def child(args) -> None:
    """One preset in this fresh process: the peak memory of its first training step."""
    set_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a, opt, loss_fn = build(args.arch, args.child, device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    before = _reset_peak_rss()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    step(a, opt, loss_fn, x, y)
    out = {"rss_rise": _status_kib("VmHWM") * 1024 - before}
    if device == "cuda":
        out["cuda_peak_rise"] = torch.cuda.max_memory_allocated() - base
    print(json.dumps(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", choices=PRESETS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0

    set_threads(args.threads)
    print(machine())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    built = {p: build(args.arch, p, device) for p in PRESETS}
    times: dict[str, list[float]] = {p: [] for p in PRESETS}
    for p in PRESETS:  # warm-up: allocator, optimizer state
        step(*built[p], x, y)
    for r in range(args.rounds):
        for p in (PRESETS if r % 2 == 0 else PRESETS[::-1]):
            c0 = time.process_time() if device == "cpu" else time.perf_counter()
            step(*built[p], x, y)
            times[p].append((time.process_time() if device == "cpu" else time.perf_counter()) - c0)
    saved = {p: saved_bytes(built[p][0], x) for p in PRESETS}
    memory = {}
    for p in PRESETS:
        cmd = [sys.executable, __file__, "--child", p, "--arch", args.arch, "--size", str(args.size),
               "--batch", str(args.batch), "--threads", str(args.threads)]
        memory[p] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    mb = 1 / 2**20
    rows = []
    for p in PRESETS:
        row = [p, trainable(built[p][0]), median(times[p]), saved[p] * mb, memory[p]["rss_rise"] * mb]
        if device == "cuda":
            row.append(memory[p]["cuda_peak_rise"] * mb)
        rows.append(row)
    clock = "CPU s" if device == "cpu" else "s"
    headers = ["preset", "trainable params", f"step {clock} (median)", "saved for backward MiB",
               "peak RSS rise MiB"] + (["CUDA peak rise MiB"] if device == "cuda" else [])
    print(table(headers, rows))
    print(f"{args.arch}, {args.size} px, batch {args.batch}, {device}, {args.rounds} alternating rounds, "
          f"{torch.get_num_threads()} threads; step time is {'process CPU' if device == 'cpu' else 'wall'} time")
    t = {p: median(times[p]) for p in PRESETS}
    print(f"headline: full / feature extraction: time {t['full'] / t['feature_extraction']:.2f}x, saved "
          f"activations {saved['full'] / max(saved['feature_extraction'], 1):.0f}x; full / last block: time "
          f"{t['full'] / t['last_blocks']:.2f}x, saved activations {saved['full'] / max(saved['last_blocks'], 1):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
