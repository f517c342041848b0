"""How long the learning-rate finder takes (`engine.train.lr_finder.find_lr`, 100 steps from 1e-7 to 10): on the
demo (the shipped digits CNN, its backbone frozen: the head sweeps on cached features) and on ResNet-18 with its
last block trainable at 64 px (random weights: no download), each against the same number of training steps of
that project by `engine.train.loop.fit` (the baseline, measured in the same run, alternating).

The finder's seconds include its set-up (data, model, cache), as a person waits for them; so does the baseline.
Headline: the finder's seconds, and finder / baseline.

    .venv/bin/python bench/lr_finder_time.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from _common import alternate, machine, median, set_threads, table, write_image_folder

STEPS = 100


def demo(base: Path):
    from engine import project as proj
    from engine.demo.scenarios import ensure_demo

    p = proj.load(ensure_demo("inductive", root=base))
    p.set("freeze.preset", "feature_extraction")
    return p


def resnet18(base: Path):
    from engine.project import Project

    write_image_folder(base / "train", classes=4, per_class=100, size=64)
    p = Project(name="bench", base_dir=base)
    for key, value in {"model.arch": "resnet18", "model.weights": "none", "data.train": "train",
                       "data.image_size": 64, "data.augment": "none", "freeze.preset": "last_blocks",
                       "freeze.last_blocks": 1, "train.batch_size": 16, "train.device": "cpu"}.items():
        p.set(key, value)
    return p


def fit_steps(project) -> float:
    """Wall seconds of `fit` over at least `STEPS` training steps (whole epochs), set-up included."""
    from engine.train.loop import fit, project_data

    p = project.copy()
    steps_per_epoch = math.ceil(len(project_data(p).train) / p.train.batch_size)
    p.set("train.epochs", max(1, math.ceil(STEPS / steps_per_epoch)))
    p.set("train.activity_every", 0)
    start = time.perf_counter()
    fit(p)
    return time.perf_counter() - start


def find(project) -> tuple[float, bool, int]:
    from engine.train.lr_finder import find_lr

    start = time.perf_counter()
    result = find_lr(project, steps=STEPS)
    return time.perf_counter() - start, result.feature_cache, len(result.lrs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)
    print(machine())
    rows, headline = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("demo, backbone frozen", demo), ("resnet18 last block, 64 px", resnet18)):
            project = make(Path(tmp) / name.split(",")[0].replace(" ", "_"))
            got = alternate({"finder": lambda p=project: find(p), "fit": lambda p=project: fit_steps(p)},
                            repeats=args.rounds)
            seconds = median([t for t, _, _ in got["finder"]])
            cached, swept = got["finder"][0][1], got["finder"][0][2]
            baseline = median(got["fit"])
            rows.append([name, "yes" if cached else "no", swept, seconds, baseline, seconds / baseline])
            headline.append(f"{name}: {seconds:.1f} s ({seconds / baseline:.2f}x {STEPS} training steps)")
    print(table(["project", "cached features", "steps swept", "finder s", f"fit of {STEPS} steps s",
                 "finder / fit"], rows))
    print(f"wall time, set-up included, median of {args.rounds} alternating rounds, {args.threads} thread(s)")
    print(f"headline: {'; '.join(headline)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
