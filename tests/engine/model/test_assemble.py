"""A project's model assembled: weights, head, plan and input size together; the meta-device skeleton."""

import pytest
import torch

from engine.errors import ProjectError, WeightsError
from engine.model import digits_cnn as demo_cnn
from engine.model.assemble import assemble, skeleton
from engine.model.layers import describe
from engine.project import Project


def demo_project(project_factory, **freeze) -> Project:
    """The demo CNN with its shipped weights and an MLP head; feature extraction unless `freeze` says otherwise."""
    freeze = {"preset": "feature_extraction", **freeze}
    return project_factory(model__weights="pretrained", head__kind="mlp", head__hidden=[16],
                           **{f"freeze__{k}": v for k, v in freeze.items()})


def test_assemble_applies_head_and_plan(project_factory):
    p = demo_project(project_factory, preset="last_blocks", last_blocks=1)
    p.model.weights = "none"
    a = assemble(p, num_classes=3)
    assert a.head_paths == ["fc"] and a.image_size == 32 and a.notes == []
    assert a.plan.frozen == {"stem", "block1", "block2"}
    assert a.model.block3[0].weight.requires_grad and not a.model.stem[0].weight.requires_grad
    assert a.model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    assert a.info.name == "thaw_digits_cnn"


def test_skeleton_matches_the_real_model(project_factory):
    p = demo_project(project_factory)
    p.model.weights = "none"
    real, skel = assemble(p, 4), skeleton(p, 4)
    assert all(t.is_meta for t in skel.model.state_dict().values())
    assert skel.plan == real.plan and skel.head_paths == real.head_paths
    assert describe(skel.model, head_paths=skel.head_paths) == describe(real.model, head_paths=real.head_paths)


@pytest.mark.skipif(not demo_cnn.SOURCE_WEIGHTS.is_file(), reason="the demo's source weights are not built")
def test_assemble_with_the_shipped_demo_weights(tmp_path, project_factory):
    from safetensors.torch import load_file

    a = assemble(demo_project(project_factory), 5)
    shipped = load_file(str(demo_cnn.SOURCE_WEIGHTS))
    assert torch.equal(a.model.block2[0].weight, shipped["block2.0.weight"])


def test_missing_pretrained_weights_are_a_clear_error(tmp_path):
    p = Project(base_dir=tmp_path)
    p.model.arch = "mobilenet_v3_small"
    with pytest.raises(WeightsError, match="mobilenet_v3_small-047dcff4.pth.*never downloads"):
        assemble(p, 3)


def test_input_size_is_raised_with_a_note(tmp_path):
    p = Project(base_dir=tmp_path)
    p.model.arch = "inception_v3"
    p.data.image_size = 32
    s = skeleton(p, 3)
    assert s.image_size == 75 and "75" in s.notes[0]
    assert s.model(torch.empty(1, 3, s.image_size, s.image_size, device="meta")).shape == (1, 3)


@pytest.mark.skipif(not demo_cnn.SOURCE_WEIGHTS.is_file(), reason="the demo's source weights are not built")
def test_a_kept_head_keeps_the_source_outputs_of_the_data_classes_in_their_order(tmp_path, project_factory):
    """Same task: the source's classifier stays; a subset of its classes, in another order, picks its rows."""
    p = demo_project(project_factory)
    p.head.kind = "keep"
    whole = assemble(p, 5, classes=["0", "1", "2", "3", "4"])
    part = assemble(p, 2, classes=["3", "1"])
    assert whole.head_paths == part.head_paths == ["fc"]
    x = torch.randn(4, 3, 32, 32)
    whole.model.eval()
    part.model.eval()
    with torch.no_grad():
        assert torch.allclose(part.model(x), whole.model(x)[:, [3, 1]], atol=1e-6)
    assert part.model.fc.weight.requires_grad  # the kept head trains, like a new one
    with pytest.raises(ProjectError, match="head.kind: the source's head has no class 'cat'"):
        assemble(p, 2, classes=["1", "cat"])
    shown = skeleton(p, 2)  # display: the whole head until the class names are known
    assert shown.model.fc.out_features == 5 and skeleton(p, 2, ["3", "1"]).model.fc.out_features == 2


def test_a_kept_head_needs_the_pretrained_weights(project_factory):
    from engine.preflight import preflight

    p = demo_project(project_factory)
    p.head.kind = "keep"
    p.model.weights = "none"
    assert any(e.key == "head.kind" and "pretrained" in str(e) for e in preflight(p))


def test_torchvision_source_classes_come_from_the_weights_metadata():
    from engine.model.zoo import source_classes

    names = source_classes("resnet18")
    assert len(names) == 1000 and names[0] == "tench"
    assert source_classes("thaw_digits_cnn") == ["0", "1", "2", "3", "4"]
