"""One architecture of each torchvision family through the whole pipeline of `bench/all_architectures.py` (which
runs every architecture): weights saved as safetensors and .pth and loaded by a project, a run per preset, the
frozen tensors compared with the file, a stopped run resumed from its checkpoint, `main.py evaluate`. The
cheapest member of each family, at the smallest input it accepts. Five families have no member under 30M
parameters or below 224 px inputs (each run writes its weights several times over): they are `slow`."""

import importlib.util
from pathlib import Path

import pytest

from engine.model import zoo

_spec = importlib.util.spec_from_file_location(
    "all_architectures", Path(__file__).resolve().parents[2] / "bench" / "all_architectures.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

# The cheapest member of each family (fewest FLOPs at its smallest input).
FAMILIES = {"alexnet": "alexnet", "convnext": "convnext_tiny", "densenet": "densenet121",
            "efficientnet": "efficientnet_b0", "googlenet": "googlenet", "inception": "inception_v3",
            "maxvit": "maxvit_t", "mnasnet": "mnasnet0_5", "mobilenetv2": "mobilenet_v2",
            "mobilenetv3": "mobilenet_v3_small", "regnet": "regnet_y_400mf", "resnet": "resnet18",
            "shufflenetv2": "shufflenet_v2_x0_5", "squeezenet": "squeezenet1_1", "swin_transformer": "swin_t",
            "vgg": "vgg11", "vision_transformer": "vit_b_32"}


def test_every_family_is_covered():
    families = {zoo.arch_info(a).family for a in zoo.list_architectures() if a != zoo.DEMO_ARCH}
    assert families == set(FAMILIES) and all(zoo.arch_info(a).family == f for f, a in FAMILIES.items())
    light = [a for a in FAMILIES.values() if a not in HEAVY]
    assert all(zoo.arch_info(a).num_params < 30e6 and zoo.arch_info(a).fixed_size is None for a in light)


HEAVY = {"alexnet", "maxvit_t", "swin_t", "vgg11", "vit_b_32"}


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow) if a in HEAVY else a
                                  for a in sorted(FAMILIES.values())])
def test_the_whole_pipeline(arch):
    row = bench.run_one(arch)
    failed = {name: step["error"] for name, step in row["steps"].items() if step.get("ok") is False}
    assert not failed, f"{arch}: {failed}"
    assert all(row["steps"][name]["ok"] for name in bench.STEPS if name != "export")
    assert min(row["frozen_tensors_checked"]) > 0
