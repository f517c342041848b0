"""Does transfer help? Validation accuracy of the demo's four recipes, from scratch to full fine-tune.

    python bench/transfer_gain.py                 # both scenarios x 5/10/25 per class x 4 recipes x 5 seeds
    python bench/transfer_gain.py --seeds 2 --per-class 5

Every run goes through the app's own engine: `engine.demo.ensure_demo` writes the target's image folders
and project file, `engine.training.fit` trains it with the recipe's settings, each run in one of `--jobs`
processes on one CPU thread. Each seed
draws other labelled images and another initialisation. Accuracy is the last epoch's (no picking the best
epoch on the validation set); validation is capped at 20 images per class to keep each run to seconds.
The last line is the headline: transfer vs scratch at 5 and 10 labelled images per class.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import project as projects  # noqa: E402
from engine.demo import SCENARIOS, ensure_demo  # noqa: E402
from engine.training import fit  # noqa: E402

# All recipes share the demo project's 30 epochs and lr 0.003 (for scratch the best of 0.001/0.003/0.01/0.03;
# for last block + head better than 0.01 and 0.03), but feature extraction: a head alone trains best at 0.05
# (of 0.01/0.05/0.2). Scratch is not handicapped by settings chosen for transfer.
RECIPES: dict[str, list[str]] = {
    "scratch": ["model.weights=none", "freeze.preset=full", "train.backbone_lr_mult=1.0"],
    "feature extraction": ["freeze.preset=feature_extraction", "train.lr=0.05"],
    "last block + head": ["freeze.preset=last_blocks", "freeze.last_blocks=1"],
    "full fine-tune": ["freeze.preset=full", "train.backbone_lr_mult=1.0"],
}
VAL_PER_CLASS = 20


def run_one(root: Path, scenario: str, per_class: int, seed: int, recipe: str) -> tuple[float, float]:
    """(final validation accuracy, seconds) of one fit of a demo project with `recipe`'s settings."""
    path = ensure_demo(scenario, per_class=per_class, seed=seed, root=root / "demos", val_per_class=VAL_PER_CLASS)
    project = projects.apply_overrides(projects.load(path), [*RECIPES[recipe], "train.device=cpu"])
    with tempfile.TemporaryDirectory(dir=root) as run_dir:
        start = time.perf_counter()
        result = fit(project, run_dir=run_dir)
        seconds = time.perf_counter() - start
    return float(result.summary["final_val_accuracy"]), seconds


def _run_job(job: tuple[str, int, str, int, str]) -> tuple[float, float]:
    """One run in a pool process: one torch thread each, so two processes use two cores without fighting."""
    torch.set_num_threads(1)
    root, per_class, scenario, seed, recipe = job
    return run_one(Path(root), scenario, per_class, seed, recipe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--per-class", type=int, nargs="+", default=[5, 10, 25])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side, one thread each (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    acc: dict[tuple[str, int, str], list[float]] = {}
    secs: dict[tuple[str, int, str], list[float]] = {}
    start = time.perf_counter()
    print("| scenario | labelled / class | recipe | val accuracy (mean ± std) | seconds / run |")
    print("|---|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.jobs) as pool:
        for scenario in args.scenarios:
            for per_class in args.per_class:
                for seed in range(args.seeds):  # write the images once, before the processes share them
                    ensure_demo(scenario, per_class=per_class, seed=seed, root=Path(tmp) / "demos",
                                val_per_class=VAL_PER_CLASS)
                for recipe in RECIPES:
                    key = (scenario, per_class, recipe)
                    jobs = [(tmp, per_class, scenario, seed, recipe) for seed in range(args.seeds)]
                    for a, s in pool.map(_run_job, jobs):
                        acc.setdefault(key, []).append(a)
                        secs.setdefault(key, []).append(s)
                    sd = statistics.stdev(acc[key]) if len(acc[key]) > 1 else 0.0
                    print(f"| {scenario} | {per_class} | {recipe} | {100 * statistics.mean(acc[key]):.1f} ± "
                          f"{100 * sd:.1f} % | {statistics.mean(secs[key]):.1f} |", flush=True)
    print(f"\n{sum(len(v) for v in acc.values())} runs in {time.perf_counter() - start:.0f} s, "
          f"{args.jobs} processes of one CPU thread")
    parts = []
    for scenario in args.scenarios:
        for per_class in [n for n in args.per_class if n in (5, 10)] or args.per_class[:1]:
            best = max((r for r in RECIPES if r != "scratch"),
                       key=lambda r: statistics.mean(acc[(scenario, per_class, r)]))
            parts.append(f"{scenario} {per_class}/class: {best} "
                         f"{100 * statistics.mean(acc[(scenario, per_class, best)]):.0f}% vs scratch "
                         f"{100 * statistics.mean(acc[(scenario, per_class, 'scratch')]):.0f}%")
    print("Transfer vs scratch (validation accuracy, chance 20%): " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
