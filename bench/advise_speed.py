"""How long the advisor's measurement takes on a CPU: the demo CNN, resnet18 and resnet50 on the demo's images.

    python bench/advise_speed.py                 # the inductive demo, 10 labelled images per class, 32 px
    python bench/advise_speed.py --size 224 --per-class 25

`engine.advice.depth.measure` (one forward pass over the training subsample and the probe's validation images,
then LogME, H-score and a linear probe at each cut point) against the bare forward pass over the same images
(the least any measurement of features needs), in ABBA order, medians of `--repeats`. resnet18/50 get random
"pretrained" weights written to a temporary torch hub cache: the time does not depend on the values.
The headline is printed last: the seconds per model and the ratio to the bare pass.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import alternate, machine, median, set_threads, table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=["thaw_digits_cnn", "resnet18", "resnet50"])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--size", type=int, default=32, help="image size (the demo's is 32 px)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="thaw-advise-") as tmp:
        os.environ["TORCH_HOME"] = tmp  # the planted weights go with it
        return measure_all(args, tmp)


def measure_all(args: argparse.Namespace, tmp: str) -> int:
    import torch

    from engine import project as projects
    from engine.advice.depth import MAX_HELD_OUT, MAX_SCORED, measure, stratified
    from engine.demo.scenarios import ensure_demo
    from engine.loading import ImageDataset, make_loader
    from engine.model import zoo
    from engine.model.digits_cnn import DEMO_ARCH
    from engine.train.loop import project_data

    set_threads(args.threads)
    print(machine())
    path = ensure_demo("inductive", per_class=args.per_class, root=Path(tmp) / "demos", val_per_class=10)
    rows, headline = [], []
    for arch in args.archs:
        if arch != DEMO_ARCH:  # the demo's weights ship; the others get random ones
            target = zoo.checkpoints_dir() / zoo.arch_info(arch).weights_file
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.save(zoo.build_model(arch).state_dict(), target)
        project = projects.apply_overrides(projects.load(path), [f"model.arch={arch}", "model.weights=pretrained",
                                                                  f"data.image_size={args.size}", "train.device=cpu"])
        data = project_data(project)
        images = stratified(data.train.samples, MAX_SCORED, 0) + stratified(data.val.samples, MAX_HELD_OUT, 0)
        model = zoo.build_model(arch, "pretrained").eval()

        def bare(model=model, data=data, images=images) -> float:
            start = time.perf_counter()
            with torch.no_grad():
                for batch in make_loader(ImageDataset(images, data.val.transform, data.val.image_size), 64, False, 0):
                    model(batch.x)
            return time.perf_counter() - start

        def advise(project=project) -> float:
            return measure(project).seconds

        got = alternate({"bare": bare, "measure": advise}, args.repeats)
        b, m = median(got["bare"]), median(got["measure"])
        rows.append([arch, data.val.image_size, len(images), b, m, m / b])
        headline.append(f"{arch} {m:.1f} s ({m / b:.1f}x the bare pass)")
    print(table(["model", "px", "images", "bare pass s", "measure s", "ratio"], rows))
    print(f"\nHeadline: the advisor's measurement on the demo's images ({args.per_class} per class, "
          f"{args.size} px): " + "; ".join(headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
