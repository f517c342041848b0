"""GPU throughput: images/s of fine-tuning ResNet-50 at 224 px, batch 128, bf16 autocast, channels_last,
through the engine (`fit`) and through the bare loop (`_common.bare_fit`: same model, frozen modules,
optimizer, data files and loader workers), for full fine-tune and feature extraction (feature cache off, so
both do the same arithmetic). A third row per preset, bare on synthetic images already on the GPU, is the
compute limit without any data loading. Images/s is training images over training seconds of the last epoch
(the first warms up cuDNN and the loader workers). Without CUDA it says so and exits 0.
Headline: engine / bare throughput ratio (goal >= 0.97) and the engine's images/s.

    .venv/bin/python bench/gpu_throughput.py [--per-class 256] [--epochs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from _common import bare_fit, engine_project, machine, table, write_image_folder


def synthetic(arch: str, preset: str, batch: int, steps: int) -> float:
    """Images/s of the bare step on random images already on the GPU: the compute limit."""
    import torchvision
    from _common import _frozen_prefix

    model = torchvision.models.get_model(arch, weights=None)
    model.fc = torch.nn.Linear(model.fc.in_features, 10)
    for m in _frozen_prefix(model, preset, 1):
        m.requires_grad_(False)
    model.cuda().to(memory_format=torch.channels_last)
    model.train() if preset == "full" else (model.eval(), model.fc.train())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(batch, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device="cuda")
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--per-class", type=int, default=256, help="training images per class (10 classes)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(machine())
        print("headline: no CUDA device on this machine; GPU throughput not measured")
        return 0
    from engine.loading import choose_workers
    from engine.train.loop import fit

    print(machine())
    rows, ratios = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_image_folder(base / "train", 10, args.per_class, 256, seed=1, fmt="jpg")
        write_image_folder(base / "val", 10, 13, 256, seed=2, fmt="jpg")
        n = 10 * args.per_class
        workers = choose_workers(n, 224)
        for preset in ("full", "feature_extraction"):
            project = engine_project(base, args.arch, 224, preset, epochs=args.epochs, batch_size=args.batch,
                                     device="cuda")
            result = fit(project, feature_cache=False)
            assert result.summary["autocast"] == "bfloat16", result.summary["autocast"]
            last = result.history[-1]
            engine_ips = last.images_per_second
            bare = bare_fit(base, args.arch, 224, preset, epochs=args.epochs, batch_size=args.batch, device="cuda",
                            amp=torch.bfloat16, channels_last=True, num_workers=workers)
            bare_ips = bare.images / bare.train_seconds[-1]
            limit = synthetic(args.arch, preset, args.batch, 30)
            ratios[preset] = (engine_ips / bare_ips, engine_ips)
            rows.append([preset, engine_ips, bare_ips, limit, engine_ips / bare_ips, engine_ips / limit])
    print(table(["preset", "engine img/s", "bare img/s (same files)", "bare img/s (synthetic, on GPU)",
                 "engine / bare", "engine / synthetic"], rows))
    print(f"{args.arch}, 224 px, batch {args.batch}, bf16 autocast, channels_last, {n} JPEG training images, "
          f"{workers} loader workers; last of {args.epochs} epochs. NVIDIA's published ResNet-50 mixed-precision "
          "training figure on one A100 is about 2,470 img/s")
    worst = min(r for r, _ in ratios.values())
    print("headline: engine/bare throughput " + ", ".join(f"{p} {r:.3f} ({ips:,.0f} img/s)"
                                                          for p, (r, ips) in ratios.items())
          + f" (goal >= 0.97: {'met' if worst >= 0.97 else 'missed'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
