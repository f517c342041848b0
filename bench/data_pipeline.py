"""Data pipeline on real-sized images: Thaw's training loader against a bare `ImageFolder` + `DataLoader`.

A folder of 2,000 JPEGs at 500x375 px (10 classes of generated shapes on noise, written once into the bench
cache), trained at 224 px with Thaw's "light" augmentation (random resized crop, flip, to tensor, normalise:
the same `v2` transform object on both sides), batch 32, shuffled. Thaw's side is what a run builds: the scan
(`engine.data.scan`), `ImageDataset` and `make_loader` with the worker count it chooses itself
(`choose_workers`); the bare side is `torchvision.datasets.ImageFolder` and a plain `DataLoader` with the same
worker count. One pass over the folder is one timing; sides alternate (ABBA) after a warm-up pass each, so
both read from the page cache. Then the same for every worker count in `--workers`, to check the default.
Reported: images/s by the clock, and the main process's CPU seconds per 1,000 images (with workers the
decoding happens in them, so compare CPU only at 0 workers). Goal: Thaw / bare images/s >= 1.0.

    .venv/bin/python bench/data_pipeline.py [--repeats 4] [--workers 0 1]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from _common import alternate, machine, median, table, timed, write_image_folder

CACHE = Path(os.environ.get("THAW_BENCH_CACHE", Path.home() / ".cache" / "thaw-bench"))
SIZE, BATCH, CLASSES, PER_CLASS = 224, 32, 10, 200


def jpeg_folder() -> Path:
    """2,000 JPEGs of 500x375 px, written once."""
    root = CACHE / "pipeline-jpeg-500x375"
    if not (root / "done").is_file():
        print(f"writing {CLASSES * PER_CLASS} JPEGs into {root} (once)", flush=True)
        write_image_folder(root / "train", CLASSES, PER_CLASS, 500, seed=3, fmt="jpg", height=375)
        (root / "done").write_text("")
    return root / "train"


def loaders(folder: Path, workers: int | None) -> dict:
    """Thaw's loader (its own worker count when `workers` is None) and the bare one with as many workers."""
    import torchvision

    from engine.data import scan
    from engine.loading import ImageDataset, build_transforms, make_loader
    from engine.model.zoo import arch_info

    transform = build_transforms(arch_info("resnet18").preprocess, SIZE, "light", train=True)
    thaw = make_loader(ImageDataset(scan(folder).samples, transform, SIZE), BATCH, True, 0, num_workers=workers)
    bare = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(str(folder), transform), batch_size=BATCH,
                                       shuffle=True, num_workers=thaw.num_workers,
                                       persistent_workers=thaw.num_workers > 0)
    return {"thaw": thaw, "bare": bare}


def one_pass(loader) -> None:
    n = 0
    for batch in loader:
        n += len(batch.y) if hasattr(batch, "y") else len(batch[1])
    assert n == CLASSES * PER_CLASS, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 1], help="other worker counts to try")
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder = jpeg_folder()
    print(machine(), "| load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()), flush=True)
    n = CLASSES * PER_CLASS
    rows, default = [], None
    for workers in [None, *args.workers]:
        sides = loaders(folder, workers)
        got = alternate({side: timed(lambda lo=lo: one_pass(lo)) for side, lo in sides.items()}, args.repeats)
        speed = {side: median([n / t.wall for t in ts]) for side, ts in got.items()}
        cpu = {side: median([1000 * t.cpu / n for t in ts]) for side, ts in got.items()}
        label = f"{sides['thaw'].num_workers}" + (" (Thaw's choice)" if workers is None else "")
        for side in sides:
            rows.append([label, side, speed[side], cpu[side], speed[side] / speed["bare"]])
        if workers is None:
            default = (sides["thaw"].num_workers, speed["thaw"] / speed["bare"], speed["thaw"])
        print(f"  workers {label}: thaw {speed['thaw']:.0f} images/s, bare {speed['bare']:.0f}", flush=True)
        del sides
    print(table(["workers", "side", "images/s", "main CPU s / 1k images", "/ bare images/s"], rows))
    print(f"{n} JPEGs 500x375 -> {SIZE} px, light augmentation, batch {BATCH}, {args.repeats} alternating passes "
          "per side after a warm-up pass, medians; one torch thread")
    print("load average at end {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    best = max((r for r in rows if r[1] == "thaw"), key=lambda r: r[2])
    workers, ratio, thaw_speed = default
    print(f"headline: Thaw's loader / bare ImageFolder+DataLoader {ratio:.2f}x images/s at its own choice of "
          f"{workers} workers (goal >= 1.0: {'met' if ratio >= 1 else 'missed'}); the fastest Thaw row, "
          f"{best[0]} workers, is {best[2] / thaw_speed:.2f}x its default")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
