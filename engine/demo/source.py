"""Build the demo's source model: `DigitsCNN` trained on a fixed subset of handwritten digits 0-4.

    python -m engine.demo.source      # rewrites resources/digits_cnn_0to4.{safetensors,json}

A one-off build step, deterministic on the CPU (fixed seed, one thread, deterministic algorithms), a couple of
minutes. The JSON records the classes, input size, mean/std and the indices into ``load_digits()`` of every
image the model trained on, so the demo's target images can be proven unseen. The images are the same
32 px upscaled digits the demo writes as PNG files, so the source and the targets share one pipeline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine.io.atomic import atomic_path, write_text_atomic
from engine.model.digits_cnn import DEMO_ARCH, INPUT_SIZE, SOURCE_META, SOURCE_WEIGHTS, DigitsCNN

SOURCE_DIGITS = (0, 1, 2, 3, 4)
TRAIN_PER_CLASS = 125  # the rest of digits 0-4 is held out for the transductive target
SEED = 0
EPOCHS = 40
BATCH_SIZE = 50
LR = 3e-3
WEIGHT_DECAY = 5e-4


def load_digits_uint8() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 scikit-learn digits as (N, 8, 8) uint8 images (ink bright, 0-255) and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def upscale(image8: np.ndarray, size: int = INPUT_SIZE) -> Image.Image:
    """An 8x8 digit as a `size` px grayscale image (bicubic), the form the demo writes to disk."""
    return Image.fromarray(image8, mode="L").resize((size, size), Image.Resampling.BICUBIC)


def source_train_indices(labels: np.ndarray, per_class: int = TRAIN_PER_CLASS, seed: int = SEED) -> list[int]:
    """The fixed, seeded subset of digits 0-4 the source model trains on (sorted indices into load_digits)."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for digit in SOURCE_DIGITS:
        candidates = np.flatnonzero(labels == digit)
        chosen.extend(int(i) for i in rng.permutation(candidates)[:per_class])
    return sorted(chosen)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Handwriting- and scanner-shaped augmentation of a batch in [0, 1]: small affine warps, then (each at
    random) blur, contrast, polarity and noise. Features that ignore these transfer to new digits and scans."""
    n = x.shape[0]
    x = _warp(x, gen)
    blurred = nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    x = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.3, blurred, x)
    low = torch.rand(n, 1, 1, 1, generator=gen) * 0.3
    high = 1 - torch.rand(n, 1, 1, 1, generator=gen) * 0.3
    x = low + (high - low) * x
    x = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.5, 1 - x, x)
    x = x + torch.randn(x.shape, generator=gen) * (torch.rand(n, 1, 1, 1, generator=gen) * 0.1)
    return x.clamp(0, 1)


def _warp(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random small affine warps (rotation, scale, shift)."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * (15 * torch.pi / 180)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.12
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.12
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


def train_source(epochs: int = EPOCHS, log=print) -> tuple[dict[str, torch.Tensor], dict]:
    """Train the source model; returns its state dict and the metadata that ships beside it."""
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        images, labels = load_digits_uint8()
        train_idx = source_train_indices(labels)
        seen = set(train_idx)
        held_idx = [int(i) for i in np.flatnonzero(np.isin(labels, SOURCE_DIGITS)) if int(i) not in seen]

        def tensor(indices: list[int]) -> torch.Tensor:
            arr = np.stack([np.asarray(upscale(images[i]), dtype=np.float32) / 255.0 for i in indices])
            return torch.from_numpy(arr)[:, None]  # (N, 1, H, W) in [0, 1]

        x_train, y_train = tensor(train_idx), torch.from_numpy(labels[train_idx])
        x_held, y_held = tensor(held_idx), torch.from_numpy(labels[held_idx])
        mean, std = float(x_train.mean()), float(x_train.std())

        def prepare(x: torch.Tensor) -> torch.Tensor:
            return ((x - mean) / std).expand(-1, 3, -1, -1)  # grayscale -> 3 channels, as the engine does

        model = DigitsCNN(num_classes=len(SOURCE_DIGITS))
        opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        steps = epochs * ((len(train_idx) + BATCH_SIZE - 1) // BATCH_SIZE)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
        gen = torch.Generator().manual_seed(SEED)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(train_idx), generator=gen)
            total = 0.0
            for start in range(0, len(order), BATCH_SIZE):
                batch = order[start : start + BATCH_SIZE]
                xb = prepare(_augment(x_train[batch], gen))
                loss = loss_fn(model(xb), y_train[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(batch)
            if (epoch + 1) % 10 == 0:
                log(f"epoch {epoch + 1}/{epochs}  loss {total / len(order):.4f}")
        model.eval()
        with torch.no_grad():
            held_acc = float((model(prepare(x_held)).argmax(1) == y_held).float().mean())
        log(f"held-out digits 0-4 (clean, never trained on): accuracy {held_acc:.4f}")
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)

    meta = {
        "arch": DEMO_ARCH,
        "dataset": "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits, 8x8)",
        "classes": [str(d) for d in SOURCE_DIGITS],
        "input_size": INPUT_SIZE,
        "widths": [getattr(model, name)[0].out_channels for name in ("stem", "block1", "block2", "block3")],
        "upscale": "8x8 -> 32x32 bicubic, grayscale (ink bright), repeated to 3 channels",
        "mean": [round(mean, 6)] * 3,
        "std": [round(std, 6)] * 3,
        "train_indices": train_idx,
        "held_out_accuracy": round(held_acc, 4),
        "recipe": {
            "seed": SEED, "epochs": epochs, "batch_size": BATCH_SIZE, "optimizer": "adamw", "lr": LR,
            "weight_decay": WEIGHT_DECAY, "scheduler": "onecycle", "label_smoothing": 0.05,
            "augment": "random affine (rotation +-15 deg, scale +-12%, shift +-12%); blur (3x3 mean, p 0.3); "
                       "contrast (black 0-0.3, white 0.7-1); inversion (p 0.5); Gaussian noise (sd 0-0.1)",
        },
        "regenerate": "python -m engine.demo.source",
    }
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    return state, meta


def write_source(state: dict[str, torch.Tensor], meta: dict, weights: Path, meta_path: Path) -> None:
    """Write the weights and the metadata, each atomically."""
    from safetensors.torch import save_file

    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"arch": DEMO_ARCH})  # one key: safetensors reorders several
    write_text_atomic(meta_path, json.dumps(meta, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.demo.source", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=SOURCE_WEIGHTS, help="where to write the weights")
    parser.add_argument("--meta", type=Path, default=SOURCE_META, help="where to write the metadata")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    state, meta = train_source()
    write_source(state, meta, args.weights, args.meta)
    print(f"wrote {args.weights} and {args.meta} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
