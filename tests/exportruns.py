"""Run folders to export: one of a real architecture written as a finished run leaves it, without the minutes of
training (random weights made `lively`, so that comparing an export with PyTorch means something), and the
standalone predict.py run where neither torch nor Thaw can be imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from tests.imagesets import shapes_project


def lively(model: nn.Module, head_paths: list[str], size: int, seed: int = 0,
           images: torch.Tensor | None = None) -> None:
    """Random weights whose outputs differ from image to image, in eval mode. A freshly initialised network can
    shrink its features to nothing (EfficientNet's are 1e-14: every image then gets the head's bias, and any
    export matches PyTorch exactly) and torchvision zero-initialises some heads: so the BatchNorm statistics
    are measured on random images, and the head gets normal weights scaled by their fan-in and no bias, for
    logits a few units apart (N(0, 1) on features that are now of size 1 would saturate the softmax: every
    image one class at 1.0; a bias of N(0, 1) would outweigh the images). With `images` (real inputs, as the
    model gets them) the statistics are measured on those instead: drawn shapes are far from noise, and statistics
    of noise gave them logits hundreds apart (every probability 0 or 1)."""
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a plain average of the batches seen
    model.train()
    with torch.no_grad():
        noise = (torch.randn(8, 3, size, size, generator=generator) for _ in range(2))
        for batch in [images] if images is not None else noise:
            model(batch)
        for path in head_paths:
            for p in model.get_submodule(path).parameters():
                scale = 2.0 / p[0].numel() ** 0.5 if p.dim() > 1 else 0.0  # a weight: by its fan-in; a bias: 0
                p.copy_(torch.randn(p.shape, generator=generator) * scale)
    model.eval()


def model_run(base: Path, arch: str, image_size: int = 64) -> Path:
    """base/run-<arch>: project.thaw.toml, labels.json, model.safetensors, and the evaluation of its validation
    split (evaluation.json, predictions.csv) as the engine writes it; the drawn shapes in base/train."""
    from engine import project as proj
    from engine.io.images import open_image
    from engine.loading import build_transforms
    from engine.model.assemble import assemble
    from engine.results.evaluation import evaluate_run
    from engine.results.predict import load_run
    from engine.runs.folder import resolved

    project = shapes_project(base, per_class=8, model__arch=arch, data__image_size=image_size,
                             train__device="cpu", train__amp=False)
    classes = ["circle", "square", "triangle"]
    torch.manual_seed(0)  # the backbone's random weights too: how lively the outputs are must not vary by run
    built = assemble(project, len(classes), "cpu", classes)
    transform = build_transforms(built.info.preprocess, built.image_size, "none", train=False)
    shapes = torch.stack([transform(open_image(p)) for p in sorted((base / "train").rglob("*.png"))])
    lively(built.model, built.head_paths, built.image_size, images=shapes)
    run_dir = base / f"run-{arch}"
    run_dir.mkdir()
    save_file({k: v.contiguous() for k, v in built.model.state_dict().items()}, str(run_dir / "model.safetensors"))
    (run_dir / "labels.json").write_text(json.dumps(classes))
    proj.save(resolved(project), run_dir / "project.thaw.toml")
    evaluate_run(load_run(run_dir, device="cpu"))
    return run_dir


# Runs a bundle's predict.py with a sys.path that holds the standard library and links to numpy, PIL and
# onnxruntime alone (with their shared libraries): first it shows that torch and Thaw cannot be imported.
_RUNNER = """
import importlib, runpy, sys
sys.path[:] = [p for p in sys.path if "site-packages" not in p and "dist-packages" not in p]
sys.path.insert(0, {links!r})
for name in ("torch", "engine", "torchvision"):
    try:
        importlib.import_module(name)
    except ImportError as exc:
        print(f"import {{name}}: {{type(exc).__name__}}")
    else:
        raise SystemExit(f"{{name}} can be imported here")
sys.argv = [{script!r}, *sys.argv[1:]]
runpy.run_path({script!r}, run_name="__main__")
"""
ALONE = ("numpy", "numpy.libs", "PIL", "pillow.libs", "onnxruntime")


def alone_path(tmp: Path) -> Path:
    """A folder of links to the packages predict.py may use (those present in this Python)."""
    import numpy

    site = Path(numpy.__file__).resolve().parents[1]
    links = tmp / "alone-site"
    if not links.exists():
        links.mkdir(parents=True)
        for name in ALONE:
            if (site / name).exists():
                (links / name).symlink_to(site / name)
    return links


def run_alone(bundle: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    """`python predict.py ARGS` in a fresh, isolated interpreter (-I -S), cwd outside the project."""
    runner = tmp / "runner.py"
    runner.write_text(textwrap.dedent(_RUNNER.format(links=str(alone_path(tmp)), script=str(bundle / "predict.py"))))
    return subprocess.run([sys.executable, "-I", "-S", str(runner), *args], capture_output=True, text=True,
                          cwd=tmp, timeout=300)
