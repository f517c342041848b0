"""Export round-trips on real torchvision architectures (random weights made lively: outputs that differ from
image to image, so the comparison means something): ONNX and .pt2 written, loaded back and verified against
PyTorch at batch 1 and 3, and the bundle's predict.py reproduces Thaw's probabilities. The slowest to trace run
with -m slow."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from engine.export.bundle import export_run
from tests.exportruns import model_run, run_alone

ARCHS = [
    ("resnet18", 64),
    ("mobilenet_v3_small", 64),
    ("efficientnet_b0", 64),
    pytest.param("convnext_tiny", 64, marks=pytest.mark.slow),
    pytest.param("vit_b_16", 224, marks=pytest.mark.slow),   # fixed 224 px
    pytest.param("swin_t", 224, marks=pytest.mark.slow),     # 224 px at least; about 2 minutes to export
]


@pytest.mark.parametrize("arch, size", ARCHS)
def test_export_round_trips_and_verifies(arch, size, tmp_path):
    run_dir = model_run(tmp_path, arch, size)
    with warnings.catch_warnings():  # nothing of TorchScript's (deprecated in torch 2.14) is used on the way
        warnings.filterwarnings("error", message=".*torch.jit.*", category=FutureWarning)
        result = export_run(run_dir, tmp_path / "bundle", ["onnx", "pt2"])
    assert result.written == ["onnx", "pt2"] and not result.failed
    for check in result.checks:
        assert check.passed and check.batches == (1, 3) and check.images == 6
    report = json.loads((tmp_path / "bundle" / "export.json").read_text())
    assert report["verification"]["onnx"]["verified"] and report["verification"]["pt2"]["verified"]
    assert "run's evaluation" in report["images_from"]
    expected = json.loads((tmp_path / "bundle" / "reference" / "expected.json").read_text())
    probabilities = np.array([item["probabilities"] for item in expected["images"]])
    assert probabilities.std(axis=0).max() > 1e-2  # outputs that differ from image to image (a lifeless network: 1e-14)
    done = run_alone(tmp_path / "bundle", "--selftest", tmp=tmp_path)
    assert done.returncode == 0 and "passed" in done.stdout, done.stdout + done.stderr
