"""Feature cache speed-up: a head-only epoch on cached features against the same epoch run uncached.

Builds a synthetic image folder in a temporary directory, trains the same feature-extraction project
(everything below the head frozen, augmentation off) with and without the cache, and prints per-epoch
seconds and the ratio (uncached epoch / cached later epoch), both measured in this run. The one-time cost
of computing the features is printed separately. Random weights: only the speed matters here.

    .venv/bin/python bench/feature_cache.py [--arch resnet18] [--size 96] [--per-class 64] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import events as ev  # noqa: E402
from engine.training import fit  # noqa: E402
from tests.imagesets import make_image_folder, shapes_project  # noqa: E402


def timed_fit(project, feature_cache: bool) -> tuple[float, list[float], str]:
    """(seconds before the first batch, seconds of each epoch, device)."""
    marks: dict[str, object] = {}

    def on(e):
        if isinstance(e, ev.FitStarted):
            marks["started"] = time.perf_counter()
            marks["device"] = e.device
            marks["cache"] = e.feature_cache

    t0 = time.perf_counter()
    result = fit(project, callbacks=[on], feature_cache=feature_cache)
    assert marks["cache"] is feature_cache, "the project does not qualify for the feature cache"
    return marks["started"] - t0, [h.seconds for h in result.history], str(marks["device"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--per-class", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_image_folder(root / "train", per_class=args.per_class, size=args.size)
        project = shapes_project(root, model__arch=args.arch, data__image_size=args.size,
                                 freeze__preset="feature_extraction", data__augment="none",
                                 train__epochs=args.epochs, train__batch_size=args.batch_size)
        plain_setup, plain, device = timed_fit(project, feature_cache=False)
        cached_setup, cached, _ = timed_fit(project, feature_cache=True)
    n = 3 * args.per_class
    print(f"{args.arch}, {n} images of {args.size} px, batch {args.batch_size}, on {device}")
    print(f"uncached epochs (s): {', '.join(f'{s:.3f}' for s in plain)}")
    print(f"cached epochs (s):   {', '.join(f'{s:.4f}' for s in cached)}")
    print(f"computing the features once: {cached_setup - plain_setup:.2f} s more set-up than uncached")
    later = cached[1:] or cached
    ratio = statistics.median(plain) / statistics.median(later)
    print(f"speed-up of a later cached epoch over an uncached epoch: {ratio:.1f}x")


if __name__ == "__main__":
    main()
