"""The layer tree: blocks found by rule, exact counts, trainable counts following a plan, the CLI view."""

import json

import pytest
from PIL import Image
from torchvision.models import mobilenet_v3_small, resnet18

from engine import cli
from engine.model import zoo
from engine.model.checklist import plan_for
from engine.model.freezing import apply_plan, frozen_tensors
from engine.model.heads import HeadSpec, replace_head
from engine.model.layers import blocks, describe, walk


@pytest.mark.parametrize("arch, expected", [
    ("resnet18", ["conv1", "layer1", "layer2", "layer3", "layer4"]),
    ("thaw_digits_cnn", ["stem", "block1", "block2", "block3"]),
    ("mobilenet_v3_small", [f"features.{i}" for i in range(13)]),
    ("regnet_y_400mf", ["stem"] + [f"trunk_output.block{i}" for i in range(1, 5)]),
    ("vit_b_16", ["conv_proj"] + [f"encoder.layers.encoder_layer_{i}" for i in range(12)]),
    ("swin_t", [f"features.{i}" for i in range(8)]),
    ("maxvit_t", ["stem"] + [f"blocks.{i}" for i in range(4)]),
])
def test_blocks_by_rule(arch, expected):
    assert blocks(zoo.build_skeleton(arch)) == expected


def test_tree_counts_follow_the_plan():
    model = mobilenet_v3_small()
    heads = replace_head(model, HeadSpec(), 4)
    plan = plan_for(model, "last_blocks", last_blocks=2, head_paths=heads)
    apply_plan(model, plan, heads)
    tree = describe(model, heads)
    assert tree.total_params == sum(p.numel() for p in model.parameters())
    assert tree.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = frozen_tensors(model, plan, heads)
    assert tree.total_params - tree.trainable_params == sum(p.numel() for n, p in model.named_parameters()
                                                            if n in frozen)
    nodes = {n.path: n for n in walk(tree)}
    assert nodes["features.0"].state == "frozen" and nodes["features.12"].state == "trainable"
    assert nodes["features"].state == "partial" and nodes["classifier.3"].is_head
    assert nodes["features.11"].is_block and not nodes["features.11.block"].is_block
    assert all(n.total_params == n.own_params + sum(c.total_params for c in n.children) for n in walk(tree))


def test_tree_to_dict_is_json_ready():
    model = resnet18()
    d = describe(model).to_dict()
    assert json.loads(json.dumps(d))["children"][0]["path"] == "conv1"


def write_project(tmp_path, arch, preset="feature_extraction", image_size=32):
    for c in ("cat", "dog", "owl"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(tmp_path / "data" / c / f"{i}.png")
    p = tmp_path / "p.thaw.toml"
    p.write_text(f'[model]\narch = "{arch}"\nweights = "pretrained"\n[data]\ntrain = "data"\n'
                 f"image_size = {image_size}\n[freeze]\npreset = \"{preset}\"\nlast_blocks = 1\n")
    return p


def test_layers_command_prints_tree_and_summary(tmp_path, capsys):
    p = write_project(tmp_path, "resnet18", preset="last_blocks")
    assert cli.main(["layers", str(p)]) == 0  # pretrained weights absent: the tree does not need them
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "trainable 8,395,267 / total 11,178,051 parameters (75.1%)"
    assert any(line.startswith("* layer3") and line.endswith("frozen") for line in out)
    assert any(line.startswith("* layer4") and line.endswith("trainable") for line in out)
    assert any(line.startswith("H fc") for line in out)


def test_layers_command_json(tmp_path, capsys):
    p = write_project(tmp_path, "vit_b_16", image_size=64)
    assert cli.main(["layers", "--json", str(p)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_classes"] == 3 and data["head_paths"] == ["heads.head"] and data["image_size"] == 224
    assert data["trainable_params"] == 768 * 3 + 3 and "224" in data["notes"][0]
    assert data["tree"]["total_params"] == data["total_params"]


def test_layers_command_unknown_arch(tmp_path, capsys):
    p = write_project(tmp_path, "resnet19")
    assert cli.main(["layers", str(p)]) == 2
    assert "model.arch" in capsys.readouterr().err
