"""Feature cache: feature-extraction epochs with the cache against the same epochs without it.

With everything below the head frozen and augmentation off, `fit` runs the backbone once over the images and
trains the head on the stored features. Here the same project runs with `fit(feature_cache=True)` and with
`fit(feature_cache=False)`, alternately; epoch times come from the engine's own `EpochEnded` events
(training + validation). The one-off cost of building the cache is reported next to one uncached epoch.
Both runs must end with the same predictions on the validation images (argmax, and the largest logit
difference). Headline: median epoch time uncached / cached after the first epoch; goal >= 10x.

    .venv/bin/python bench/feature_cache.py [--epochs 4] [--repeats 2] [--size 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from _common import engine_project, machine, median, set_threads, table, write_image_folder


def val_logits(model: torch.nn.Module, project) -> torch.Tensor:
    """The model's logits on the project's validation images, through the engine's own transforms."""
    from engine.train.loop import project_data

    data = project_data(project)
    x = torch.stack([data.val[i][0] for i in range(len(data.val))])
    model.eval()
    with torch.no_grad():
        return model(x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-per-class", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from engine import events as ev
    from engine.train.loop import fit

    set_threads(args.threads)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_image_folder(base / "train", 5, args.train_per_class, args.size + 16, seed=1)
        write_image_folder(base / "val", 5, 8, args.size + 16, seed=2)
        project = engine_project(base, args.arch, args.size, "feature_extraction", epochs=args.epochs,
                                 batch_size=args.batch)
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for r in range(args.repeats):
            for cached in ((True, False) if r % 2 == 0 else (False, True)):
                epochs: list[ev.EpochEnded] = []
                t0 = time.perf_counter()
                result = fit(project, feature_cache=cached,
                             callbacks=[lambda e, out=epochs: out.append(e) if isinstance(e, ev.EpochEnded) else None])
                total = time.perf_counter() - t0
                assert result.summary["feature_cache"] == cached
                runs[cached].append({"epochs": [e.seconds for e in epochs], "total": total,
                                     "setup": total - sum(e.seconds for e in epochs),
                                     "val_acc": [e.val_accuracy for e in epochs],
                                     "logits": val_logits(result.model, project)})
    rows = []
    for cached in (False, True):
        rs = runs[cached]
        first = median([r["epochs"][0] for r in rs])
        later = median([s for r in rs for s in r["epochs"][1:]])
        rows.append(["cached" if cached else "uncached", median([r["setup"] for r in rs]), first, later,
                     median([r["total"] for r in rs])])
    print(table(["run", "set-up s (incl. cache)", "epoch 1 s", "later epochs s (median)", "whole fit s"], rows))
    uncached_later, cached_later = rows[0][3], rows[1][3]
    build = rows[1][1] - rows[0][1]
    a, b = runs[True][0]["logits"], runs[False][0]["logits"]
    same = float((a.argmax(1) == b.argmax(1)).float().mean())
    diff = float((a - b).abs().max())
    same_acc = runs[True][0]["val_acc"] == runs[False][0]["val_acc"]
    print(f"cache build (extra set-up) {build:.3f} s = {build / rows[0][2]:.2f} uncached epochs; "
          f"{args.epochs} epochs of {5 * args.train_per_class} train + 40 val images, batch {args.batch}, "
          f"{args.repeats} alternating runs each, {torch.get_num_threads()} threads")
    print(f"predictions on {len(a)} validation images: {same:.0%} equal argmax, largest logit difference "
          f"{diff:.2e}; per-epoch validation accuracy identical: {same_acc}")
    ratio = uncached_later / cached_later
    print(f"headline: uncached/cached epoch time after the first epoch {ratio:.1f}x "
          f"(goal >= 10x: {'met' if ratio >= 10 and same == 1.0 else 'missed'}), predictions equal: {same == 1.0}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
