"""Does transfer help, and does the advisor pick the best way? The demo's transfer study, both scenarios.

    python bench/transfer_gain.py                 # both scenarios x 5/10/25 per class x 5 recipes x 5 seeds
    python bench/transfer_gain.py --seeds 2 --per-class 5 --scenarios transductive

A thin caller of the transfer study (`engine.study`, as ``python main.py study``): `ensure_demo` writes each
target with 25 labelled images per class, 10 per class for validation and the rest as its test split; the study
trains every recipe on 5, 10 and 25 of the labelled images per class (each seed draws its own subset and
initialisation), asks the advisor on each, and measures every kept model once on the test split. Scratch keeps
a linear head (its own best; the transfer recipes train the demo's cosine head). One CPU thread.
The last lines are the headline: per cell, the advisor's pick against the best recipe.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import project as projects  # noqa: E402
from engine.demo.scenarios import SCENARIOS, ensure_demo  # noqa: E402
from engine.loading import make_loader  # noqa: E402
from engine.model.digits_cnn import load_meta  # noqa: E402
from engine.model.zoo import build_model  # noqa: E402
from engine.study.recipes import DEFAULT  # noqa: E402
from engine.study.runner import Settings, Study  # noqa: E402
from engine.study.table import tables  # noqa: E402
from engine.train.loop import project_data  # noqa: E402

POOL, VAL_PER_CLASS = 25, 10
SCRATCH = ["head.kind=linear"]  # scratch's own best head (the cosine head cost it 0.2-2 points)


def demo_project(root: Path, scenario: str) -> projects.Project:
    path = ensure_demo(scenario, per_class=POOL, seed=0, root=root / "demos", val_per_class=VAL_PER_CLASS)
    return projects.apply_overrides(projects.load(path), ["data.test=images/test", "train.device=cpu"])


def source_as_shipped(project: projects.Project) -> float:
    """The shipped source with its own head, untrained on the target, on the test split (same task only)."""
    model = build_model(project.model.arch, project.model.weights).eval()
    data = project_data(projects.apply_overrides(project, ["data.val=images/test"]))
    assert data.classes == load_meta()["classes"], "the source's own head needs the source's classes"
    right = total = 0
    with torch.no_grad():
        for batch in make_loader(data.val, 256, False, 0):
            right += int((model(batch.x).argmax(1) == batch.y).sum())
            total += len(batch.y)
    return right / total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--per-class", type=int, nargs="+", default=[5, 10, 25])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--recipes", default=",".join(DEFAULT))
    parser.add_argument("--keep", type=Path, help="keep the study folders here (default: a temporary folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    headline = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for scenario in args.scenarios:
            project = demo_project(root, scenario)
            study = Study(project, root / f"study-{scenario}",
                          Settings(args.recipes.split(","), args.seeds, tuple(args.per_class)), {"scratch": SCRATCH},
                          source=f"the {scenario} demo")
            state = study.run(progress=lambda p: print(f"  [{p.done}/{p.total}] {p.current}", end="\r", flush=True))
            print(f"\n## {scenario}\n\n{(study.folder / 'study.md').read_text(encoding='utf-8')}")
            for t in tables(state):
                a = t["advisor"]
                picks = sorted({c["advice"]["recipe"] for c in state["cells"] if c["per_class"] == t["per_class"]})
                headline.append(f"| {scenario} | {t['per_class']} | {', '.join(picks)} "
                                f"| {100 * a['mean']:.1f} | {a['best']} | {100 * a['best_mean']:.1f} | {a['gap']:.1f} |")
            if SCENARIOS[scenario].shifted:
                print(f"Reference, {scenario} (same task): the source as shipped, with its own head and no training, "
                      f"on the same test images: {100 * source_as_shipped(project):.1f}%\n")
    print(f"{args.seeds} seeds in {time.perf_counter() - start:.0f} s, one CPU thread\n")
    print("| scenario | labelled / class | advisor's picks | their accuracy | best recipe | its accuracy | gap (points) |")
    print("|---|---:|---|---:|---|---:|---:|")
    print("\n".join(headline))
    within = sum(float(line.rsplit("|", 2)[1]) <= 1.0 for line in headline)
    print(f"\nHeadline: the advisor's pick is within 1 point of the best recipe in {within} of {len(headline)} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
