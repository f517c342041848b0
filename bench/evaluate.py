"""Evaluation after training: the engine's evaluation against a bare inference loop, its memory at 1k and 10k
images, and the Results view's confusion-matrix click with 10,000 predictions.

1. Throughput: `engine.results.evaluation.evaluate` (predictions, every figure, evaluation.json and
   predictions.csv written) against a bare ``torch.no_grad()`` loop (the model on every batch, nothing kept)
   over the same DataLoader (`make_loader` on the run's dataset), alternating, median of `--repeats`, by the
   clock and per second of the process's CPU time (steadier while other processes share the cores).
   Goal: engine / bare throughput >= 0.95.
2. Peak memory: a fresh process evaluates a run on 1,000 and on 10,000 images (the demo CNN at 32 px);
   its peak RSS (VmHWM) and the growth over the process before evaluating. Goal: independent of the
   number of images.
3. The window: the Results view shows the 10,000-image evaluation; each cell of the matrix is clicked (a real
   mouse click on the view, offscreen) and timed until the gallery has been laid out and painted (its
   thumbnails then fill in the background). Goal: <= 100 ms.

Headline (printed last): the throughput ratio.

    .venv/bin/python bench/evaluate.py [--arch resnet18] [--size 64] [--images 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402
from _common import ROOT, alternate, machine, median, set_threads, table, timed, write_image_folder  # noqa: E402

CLASSES = 5


def train_run(base: Path, arch: str, size: int) -> Path:
    """A finished run (one epoch from random weights on 5 x 8 images): a model to evaluate."""
    from engine.runs import folder as run
    from tests.imagesets import shapes_project

    write_image_folder(base / "train", CLASSES, 8, size + 16, seed=1)
    project = shapes_project(base, **{"model__arch": arch, "data__image_size": size, "train__epochs": 1,
                                      "train__device": "cpu", "train__amp": False, "train__batch_size": 32})
    return run.train(project, base / "runs" / arch)[0]


def throughput(run_dir: Path, folder: Path, out: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Images per second of the clock and per second of CPU: the engine's evaluation and the bare loop,
    alternating."""
    from engine.loading import make_loader
    from engine.results.evaluation import evaluate
    from engine.results.predict import labelled_samples, load_run

    trained = load_run(run_dir, "cpu")
    samples, _ = labelled_samples(trained, folder)
    batch = trained.project.train.batch_size

    def engine() -> None:
        evaluate(trained, samples, split="other", source=str(folder), folder=out)

    def bare() -> None:
        loader = make_loader(trained.dataset(samples), batch, shuffle=False, seed=0)
        trained.model.eval()
        with torch.no_grad():
            for b in loader:
                trained.model(b.x)

    times = alternate({"engine": timed(engine), "bare": timed(bare)}, repeats)
    return {name: {"wall": len(samples) / median([t.wall for t in ts]), "cpu": len(samples) / median([t.cpu for t in ts])}
            for name, ts in times.items()}


def rss_child(run_dir: str, folder: str) -> None:
    """In a fresh process: evaluate, then print the peak RSS and the RSS before evaluating (MiB)."""
    from engine.results.evaluation import evaluate_run
    from engine.results.predict import load_run

    trained = load_run(run_dir, "cpu")
    before = _status("VmRSS")
    evaluate_run(trained, folder)
    print(json.dumps({"peak": _status("VmHWM"), "before": before}))


def _status(key: str) -> float:
    """A figure of /proc/self/status in MiB: VmRSS (now) or VmHWM (the peak of this process's own memory;
    ``ru_maxrss`` would start at the parent's peak, which survives fork and exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024


def peak_rss(run_dir: Path, folder: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--rss", str(run_dir), str(folder)], capture_output=True,
                         text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def click_times(run_dir: Path, evaluation: Path, rounds: int) -> tuple[list[float], int, int]:
    """Milliseconds from a click on each matrix cell to the gallery laid out and painted; and the largest cell."""
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from gui.results.view import ResultsView

    app = QApplication.instance() or QApplication([])
    view = ResultsView()
    view.resize(1200, 800)
    view.show()
    view.show_run(run_dir, evaluation)
    end = time.monotonic() + 120
    while (view.shown is None or view.is_loading()) and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    for _ in range(20):
        app.processEvents()
    p = view.predictions()
    table_view = view.matrix
    times = []
    for _ in range(rounds):
        for i in range(CLASSES):
            for j in range(CLASSES):
                at: QPoint = table_view.visualRect(table_view.index_of(i, j)).center()
                t0 = time.perf_counter()
                QTest.mouseClick(table_view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
                app.processEvents()
                view.gallery.viewport().repaint()
                times.append(1000 * (time.perf_counter() - t0))
                assert view.gallery.gallery_model.rowCount() == int(view.shown.matrices["counts"][i, j])
                for _ in range(3):
                    app.processEvents()
    largest = int(view.shown.matrices["counts"].max())
    view.shutdown()
    view.deleteLater()
    return times, largest, len(p)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--rss":
        rss_child(sys.argv[2], sys.argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--images", type=int, default=1000, help="images for the throughput comparison")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="times each matrix cell is clicked")
    args = ap.parse_args()
    set_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        run_dir = train_run(base / "a", args.arch, args.size)
        images = write_image_folder(base / "eval", CLASSES, args.images // CLASSES, args.size + 16, seed=3)
        speed = throughput(run_dir, images, base / "out", args.repeats)
        ratio = {k: speed["engine"][k] / speed["bare"][k] for k in ("wall", "cpu")}
        print(f"\n1. throughput, {args.arch} at {args.size} px, {args.images} images, batch 32, "
              f"{args.threads} thread(s), median of {args.repeats}:")
        print(table(["side", "images/s (clock)", "images per CPU-s"],
                    [["engine evaluate", speed["engine"]["wall"], speed["engine"]["cpu"]],
                     ["bare no_grad loop", speed["bare"]["wall"], speed["bare"]["cpu"]],
                     ["engine / bare", ratio["wall"], ratio["cpu"]]]))

        demo = train_run(base / "d", "thaw_digits_cnn", 32)
        sizes = {}
        for n in (1000, 10_000):
            folder = write_image_folder(base / f"e{n}", CLASSES, n // CLASSES, 40, seed=4)
            sizes[n] = peak_rss(demo, folder)
        print("\n2. peak RSS of a fresh process evaluating the demo CNN (32 px):")
        print(table(["images", "before (MiB)", "peak (MiB)", "growth (MiB)"],
                    [[n, r["before"], r["peak"], r["peak"] - r["before"]] for n, r in sizes.items()]))
        growth = {n: r["peak"] - r["before"] for n, r in sizes.items()}
        print(f"peak at 10k / peak at 1k: {sizes[10_000]['peak'] / sizes[1000]['peak']:.3f}; growth 10k - 1k: "
              f"{growth[10_000] - growth[1000]:+.1f} MiB")

        evaluation = next((demo / "evaluations").glob("e10000-*"))
        times, largest, n = click_times(demo, evaluation, args.rounds)
        print(f"\n3. click on a matrix cell -> gallery laid out and painted, {n:,} predictions, "
              f"{CLASSES * CLASSES} cells x {args.rounds} (largest cell {largest:,} images):")
        print(table(["median ms", "p90 ms", "max ms"], [[median(times), sorted(times)[int(0.9 * len(times))],
                                                         max(times)]]))
        print(f"goal <= 100 ms: {'met' if max(times) <= 100 else 'NOT met'}")
    print(f"\nheadline: evaluation throughput {ratio['cpu']:.3f}x the bare no_grad loop per CPU-second "
          f"({ratio['wall']:.3f}x by the clock on this shared machine; goal >= 0.95)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
