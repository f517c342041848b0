"""Does transfer help? Validation accuracy of the demo's four recipes, from scratch to full fine-tune.

    python bench/transfer_gain.py                 # both scenarios x 5/10/25 per class x 4 recipes x 5 seeds
    python bench/transfer_gain.py --seeds 2 --per-class 5

Every run goes through the app's own engine: `engine.demo.scenarios.ensure_demo` writes the target's image folders
and project file, `engine.train.loop.fit` trains it with the recipe's settings, each run in one of `--jobs`
processes on one CPU thread. Each seed draws other labelled images and another initialisation.
Validation is capped at 10 images per class, which keeps each run to seconds; the accuracy reported is the
trained model's (the one the app saves) on the **test** split: every other image of the target, used
neither to train nor to validate, measured once at the end. Every recipe of a seed trains, validates and
tests on the same images and starts from the same `train.seed`, so the evidence is paired: a second table
gives, per transfer recipe, the per-seed difference to scratch (mean ± std, in points) and on how many
seeds transfer won, tied or lost.
The last lines are the headline: the demo's default recipe vs scratch at 5 and 10 labelled images per class.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import project as projects  # noqa: E402
from engine.demo.scenarios import SCENARIOS, ensure_demo  # noqa: E402
from engine.loading import make_loader  # noqa: E402
from engine.model.digits_cnn import load_meta  # noqa: E402
from engine.model.zoo import build_model  # noqa: E402
from engine.train.loop import fit, project_data  # noqa: E402

# All recipes share the demo project's 30 epochs, lr 0.003 and cosine head, but: scratch keeps a linear head
# and feature extraction trains at lr 0.01 (each its own best; see docs/transfer-gain.md). For scratch, 0.003
# is the best of 0.001/0.003/0.01/0.03 and the linear head beats the cosine one, so scratch is not
# handicapped by settings chosen for transfer.
RECIPES: dict[str, list[str]] = {
    "scratch": ["model.weights=none", "freeze.preset=full", "head.kind=linear"],
    "feature extraction": ["freeze.preset=feature_extraction", "train.lr=0.01"],
    "last block + head": ["freeze.preset=last_blocks", "freeze.last_blocks=1"],
    "full fine-tune": ["freeze.preset=full"],
}
VAL_PER_CLASS = 10
DEFAULT_RECIPE = "last block + head"  # what engine.demo.demo_project sets up


def run_one(root: Path, scenario: str, per_class: int, seed: int, recipe: str) -> tuple[float, float]:
    """(test accuracy, seconds) of one fit of a demo project with `recipe`'s settings."""
    path = ensure_demo(scenario, per_class=per_class, seed=seed, root=root / "demos", val_per_class=VAL_PER_CLASS)
    project = projects.apply_overrides(projects.load(path), [*RECIPES[recipe], "train.device=cpu"])
    with tempfile.TemporaryDirectory(dir=root) as run_dir:
        start = time.perf_counter()
        result = fit(project, run_dir=run_dir)
        seconds = time.perf_counter() - start
    return held_out_accuracy(result.model, project, result.classes), seconds


def source_as_shipped(root: Path, scenario: str, per_class: int, seed: int) -> float:
    """The shipped source with its own head, untrained on the target, on the test split (same task only)."""
    project = projects.load(ensure_demo(scenario, per_class=per_class, seed=seed, root=root / "demos",
                                        val_per_class=VAL_PER_CLASS))
    model = build_model(project.model.arch, project.model.weights)
    return held_out_accuracy(model, project, load_meta()["classes"])


def held_out_accuracy(model: torch.nn.Module, project: projects.Project, classes: list[str]) -> float:
    """Accuracy on the demo's ``images/test`` split, preprocessed as the engine preprocesses validation."""
    data = project_data(projects.apply_overrides(project, ["data.val=images/test"]))
    assert data.classes == classes and not data.skipped, "the test split must have the training classes"
    right = total = 0
    model.eval()
    with torch.no_grad():
        for batch in make_loader(data.val, 256, False, 0):
            right += int((model(batch.x).argmax(1) == batch.y).sum())
            total += len(batch.y)
    return right / total


@dataclass(frozen=True)
class Paired:
    """Per-seed differences (transfer − scratch, in points): the seeds share images, so these cancel their luck."""

    diffs: list[float]
    mean: float
    std: float
    won: int
    tied: int
    lost: int

    @property
    def clear(self) -> bool:
        """Won on at least 4 seeds in 5, and the mean gain is larger than the seeds' spread of it."""
        return 5 * self.won >= 4 * len(self.diffs) and self.mean > self.std


def paired(transfer: list[float], scratch: list[float]) -> Paired:
    """Compare two recipes seed by seed; accuracies are fractions, differences come back in points."""
    diffs = [round(100 * (t - s), 6) for t, s in zip(transfer, scratch, strict=True)]  # round: 0.95-0.93 noise
    return Paired(diffs, statistics.mean(diffs), statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
                  sum(d > 0 for d in diffs), sum(d == 0 for d in diffs), sum(d < 0 for d in diffs))


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
    print("| scenario | labelled / class | recipe | test accuracy (mean ± std) | seconds / run |")
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
        shipped = {scenario: [source_as_shipped(Path(tmp), scenario, n, seed) for n in args.per_class
                              for seed in range(args.seeds)]
                   for scenario in args.scenarios if SCENARIOS[scenario].shifted}
    print(f"\n{sum(len(v) for v in acc.values())} runs in {time.perf_counter() - start:.0f} s, "
          f"{args.jobs} processes of one CPU thread")
    print("\nPaired: per seed, transfer accuracy minus scratch accuracy (same labelled images, same seed)\n")
    print("| scenario | labelled / class | recipe − scratch | difference (mean ± std) | won / tied / lost "
          "| per seed |")
    print("|---|---:|---|---:|:---:|---|")
    for scenario in args.scenarios:
        for per_class in args.per_class:
            for recipe in RECIPES:
                if recipe == "scratch":
                    continue
                d = paired(acc[(scenario, per_class, recipe)], acc[(scenario, per_class, "scratch")])
                print(f"| {scenario} | {per_class} | {recipe} | {d.mean:+.1f} ± {d.std:.1f} pt | "
                      f"{d.won} / {d.tied} / {d.lost} | {' '.join(f'{x:+.1f}' for x in d.diffs)} |")
    print()
    for scenario in args.scenarios:
        parts = []
        for per_class in [n for n in args.per_class if n in (5, 10)] or args.per_class[:1]:
            t = acc[(scenario, per_class, DEFAULT_RECIPE)]
            base = acc[(scenario, per_class, "scratch")]
            d = paired(t, base)
            err_t, err_base = 100 - 100 * statistics.mean(t), 100 - 100 * statistics.mean(base)
            parts.append(f"{per_class}/class {100 - err_t:.1f}% vs {100 - err_base:.1f}% (errors "
                         f"{1 - err_t / err_base:.0%} fewer), "
                         f"paired gain {d.mean:+.1f} ± {d.std:.1f} pt, won {d.won}/{len(d.diffs)} "
                         f"(tied {d.tied}, lost {d.lost}): {'clear' if d.clear else 'NOT clear'}")
        print(f"Headline, {scenario}, {DEFAULT_RECIPE} (the demo's default) vs scratch: " + "; ".join(parts))
    print("('clear': transfer won on at least 4 seeds in 5 and the mean gain exceeds its std)")
    for scenario, got in shipped.items():
        print(f"Reference, {scenario} (same task): the source as shipped, with its own head and no training, on "
              f"the same test images: {100 * statistics.mean(got):.1f}% (lowest {100 * min(got):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
