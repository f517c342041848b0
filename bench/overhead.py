"""Engine overhead: `engine.train.loop.fit` against a bare PyTorch loop written here, same work, same run.

Both build ResNet-18 (random weights) with a new linear head, freeze the same modules, read the same PNG
folders through the same transforms, train with AdamW (head / backbone groups) and a per-batch cosine schedule
for the same epochs and steps, and validate once per epoch, on the same number of threads, in the same
memory layout (channels_last, as the engine trains a convolutional model). The engine's
feature cache is off here (`fit(feature_cache=False)`: bench/feature_cache.py measures it), so both do the
same arithmetic. Runs alternate (ABBA) and the headline is the median whole-run time ratio engine / bare
(set-up, per-epoch checkpoints and validation included); goal <= 1.05. The "batch loop" row compares only the
time inside the training batch loops (per-step cost): the difference between the two is the fixed cost per
run and per epoch, which weighs more the fewer steps an epoch has (5 here by default).

    .venv/bin/python bench/overhead.py [--repeats 5] [--epochs 2] [--size 64]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from _common import (
    alternate,
    bare_fit,
    engine_project,
    machine,
    median,
    set_threads,
    table,
    timed,
    write_image_folder,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-per-class", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--presets", nargs="+", default=["feature_extraction", "full"])
    args = ap.parse_args()

    from engine.train.loop import fit

    set_threads(args.threads)
    print(machine())
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_image_folder(base / "train", 5, args.train_per_class, args.size + 16, seed=1)
        write_image_folder(base / "val", 5, 8, args.size + 16, seed=2)
        for preset in args.presets:
            project = engine_project(base, args.arch, args.size, preset, epochs=args.epochs, batch_size=args.batch)

            loop: dict[str, list[float]] = {"engine": [], "bare": []}  # seconds inside the batch loops

            def engine(project=project, loop=loop) -> None:
                result = fit(project, feature_cache=False)
                assert not result.summary["feature_cache"] and result.summary["epochs_completed"] == args.epochs
                loop["engine"].append(sum(e.train_seconds for e in result.history))

            def bare(preset=preset, loop=loop) -> None:
                r = bare_fit(base, args.arch, args.size, preset, epochs=args.epochs, batch_size=args.batch,
                             channels_last=True)  # as the engine trains a convolutional model
                loop["bare"].append(sum(r.train_seconds))

            t = alternate({"engine": timed(engine), "bare": timed(bare)}, args.repeats)
            for kind in ("wall", "cpu"):
                e = [getattr(x, kind) for x in t["engine"]]
                b = [getattr(x, kind) for x in t["bare"]]
                ratio = median(e) / median(b)
                ratios.append((preset, kind, ratio))
                rows.append([f"{args.arch} {preset}", kind, median(e), median(b), min(e), min(b),
                             median([x / y for x, y in zip(e, b, strict=True)]), ratio])
            e, b = loop["engine"][1:], loop["bare"][1:]  # the warm-up round is not timed either
            rows.append([f"{args.arch} {preset}", "batch loop wall", median(e), median(b), min(e), min(b),
                         median([x / y for x, y in zip(e, b, strict=True)]), median(e) / median(b)])
    print(table(["run", "clock", "engine s (median)", "bare s (median)", "engine min", "bare min",
                 "median pair ratio", "ratio of medians"], rows))
    print(f"{args.repeats} alternating runs each, {args.epochs} epochs of {5 * args.train_per_class} images, "
          f"batch {args.batch}, {torch.get_num_threads()} threads")
    worst = max(r for _, kind, r in ratios if kind == "cpu")
    print("headline: engine/bare median time ratio " + ", ".join(f"{p} {k} {r:.3f}" for p, k, r in ratios)
          + f" (goal <= 1.05 on CPU time: {'met' if worst <= 1.05 else 'missed'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
