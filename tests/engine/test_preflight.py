"""The one preflight: every problem that can be known before training, each naming its key."""

import shutil
from collections import namedtuple

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import resnet18

from engine import project as proj
from engine.errors import ProjectError
from engine.io.weights import load_state_dict, read_shapes
from engine.model.digits_cnn import DigitsCNN
from engine.preflight import blocking, preflight, raise_first
from engine.sources import scan_sources, source_problems, source_warnings
from tests.imagesets import make_image_folder


def keys(found):
    return {e.key for e in found}


def test_every_problem_is_listed_with_its_key():
    p = proj.Project()
    p.train.lr = -1.0  # set directly, as a half-edited field could
    p.train.device = "cuda" if not torch.cuda.is_available() else "cpu"
    found = preflight(p)
    assert {"train.lr", "data.train"} <= keys(found)
    assert ("train.device" in keys(found)) == (not torch.cuda.is_available())
    assert "model.weights" in keys(found)  # resnet18's pretrained file is not in this test's torch hub cache
    with pytest.raises(ProjectError, match="train.lr"):
        raise_first(p)


def test_missing_folders_and_weights_files(tmp_path):
    p = proj.Project(base_dir=tmp_path)
    p.data.train, p.data.val = "nope", "gone.csv"
    p.model.weights = "w.safetensors"
    found = {e.key: e.problem for e in preflight(p)}
    assert "is not a folder" in found["data.train"] and "does not exist" in found["data.val"]
    assert "does not exist" in found["model.weights"]
    p.model.weights = "pretrianed"  # a typo, not a path
    assert "must be 'pretrained', 'none' or a weights file" in {e.key: e.problem for e in preflight(p)}["model.weights"]
    (tmp_path / "downloads").mkdir()
    p.model.weights = "downloads"
    assert "is a folder, not a weights file" in {e.key: e.problem for e in preflight(p)}["model.weights"]


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_weights_file_of_another_architecture_is_refused_before_training(tmp_path, project_factory, suffix):
    """The issue's case: a resnet18 file chosen for mobilenet_v3_small."""
    state = resnet18().state_dict()
    path = tmp_path / f"resnet18{suffix}"
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    p = project_factory(model__arch="mobilenet_v3_small", model__weights=str(path))
    found = {e.key: e.problem for e in preflight(p)}
    assert "does not fit this architecture" in found["model.weights"] and "missing keys" in found["model.weights"]
    p.model.arch = "resnet18"
    assert "model.weights" not in keys(preflight(p))


def test_shapes_are_read_without_loading_the_tensors(tmp_path):
    """safetensors: from the header; a .pth zip archive: memory-mapped. Both as the full load would say."""
    state = DigitsCNN().state_dict()
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.pth")
    want = {k: tuple(v.shape) for k, v in state.items()}
    assert read_shapes(tmp_path / "w.safetensors") == want == read_shapes(tmp_path / "w.pth")
    assert {k: tuple(v.shape) for k, v in load_state_dict(tmp_path / "w.pth").items()} == want


def test_a_file_with_another_head_fits(tmp_path, project_factory):
    path = tmp_path / "digits.safetensors"
    save_file(DigitsCNN(num_classes=9).state_dict(), str(path))  # fine-tuned before, for 9 classes
    assert "model.weights" not in keys(preflight(project_factory(model__weights=str(path))))


def test_the_input_size_an_architecture_forces_is_a_warning_with_its_cost(project_factory):
    p = project_factory(model__arch="vit_h_14", data__image_size=224)
    warning = next(e for e in preflight(p) if e.key == "data.image_size")
    assert warning.warning and "518 px" in warning.problem and "5.3x the pixels" in warning.problem
    assert "1,017 GFLOPs per image" in warning.problem
    assert warning not in blocking(preflight(p))


def test_data_problems_need_a_scan(tmp_path, project_factory):
    p = project_factory(per_class=2, data__val_fraction=0.9)
    assert not {"data.val_fraction"} & keys(preflight(p))  # unknown without a scan
    found = {e.key: e.problem for e in preflight(p, scan_sources(p))}
    assert "only 2 usable image(s)" in found["data.val_fraction"]
    make_image_folder(tmp_path / "val", per_class=1, classes=("circle", "hexagon"))
    p.data.val = "val"
    found = {e.key: e.problem for e in preflight(p, scan_sources(p))}
    assert "validation classes not in the training data: hexagon" in found["data.val"]
    assert "data.val_fraction" not in found  # the share is not used with a validation folder


def _train_with_an_empty_class(tmp_path, good=("circle", "triangle")):
    root = make_image_folder(tmp_path / "train", per_class=4, classes=good)
    (root / "square").mkdir()
    (root / "square" / "broken.png").write_bytes(b"")


def test_a_class_without_images_is_a_warning_for_the_training_folder(tmp_path, project_factory):
    _train_with_an_empty_class(tmp_path)
    p = project_factory()
    sources = scan_sources(p)
    assert sources.classes == ["circle", "triangle"] and source_problems(p, sources) == []
    ((key, why),) = source_warnings(p, sources)
    assert key == "data.train" and "class 'square' has no usable images" in why and "cannot be learned" in why
    assert not {"data.train", "data.val_fraction"} & keys(blocking(preflight(p, sources)))


def test_the_preflight_lists_a_class_without_images_as_a_warning(tmp_path, project_factory):
    _train_with_an_empty_class(tmp_path)
    p = project_factory()
    warning = next(e for e in preflight(p, scan_sources(p)) if e.key == "data.train")
    assert warning.warning and "'square'" in warning.problem


def test_one_class_left_beside_an_empty_one_is_still_an_error(tmp_path, project_factory):
    _train_with_an_empty_class(tmp_path, good=("circle",))
    p = project_factory()
    sources = scan_sources(p)
    assert source_warnings(p, sources) == []
    error = next(e for e in preflight(p, sources) if e.key == "data.train")
    assert not error.warning and "only one class with usable images ('circle')" in error.problem
    assert "'square' has none" in error.problem


def test_keeping_the_head_needs_the_source_classes(project_factory):
    p = project_factory(model__weights="pretrained", head__kind="keep")  # shapes: not digits
    found = {e.key: e.problem for e in preflight(p, scan_sources(p))}
    assert "has no class 'circle'" in found["head.kind"]
    p.model.weights = "none"
    assert "needs model.weights = \"pretrained\"" in {e.key: e.problem for e in preflight(p)}["head.kind"]


def test_a_custom_plan_must_name_the_architectures_layers(project_factory):
    p = project_factory(freeze__preset="custom", freeze__frozen=["stem", "layer9"])
    assert "'layer9'" in {e.key: e.problem for e in preflight(p)}["freeze.frozen"]
    p.freeze.frozen = ["stem", "fc.weight"]  # inside the head: trained anyway, not an error
    assert "freeze.frozen" not in keys(preflight(p))


def test_a_disk_too_small_for_the_checkpoints_is_reported(project_factory, monkeypatch):
    p = project_factory(model__arch="vit_h_14")
    assert "train.out_dir" not in keys(preflight(p))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10 << 30, 9 << 30, 1 << 30))  # a full disk
    found = {e.key: e.problem for e in preflight(p)}
    assert "only 1,024 MB free" in found["train.out_dir"] and "need about 21,7" in found["train.out_dir"]


def test_an_output_folder_under_a_file_is_refused_before_the_run(project_factory, tmp_path):
    (tmp_path / "one.png").write_bytes(b"not a folder")
    p = project_factory(train__out_dir=str(tmp_path / "one.png" / "x"))
    found = {e.key: e.problem for e in blocking(preflight(p))}
    assert "one.png is a file, not a folder" in found["train.out_dir"]  # Start says why (the run refused it late)


def test_a_schedule_names_this_architectures_layers_and_starts_within_the_run():
    p = proj.Project()
    p.set("model.arch", "thaw_digits_cnn")
    p.set("train.epochs", 4)
    p.set("freeze.stages", [{"start": 2, "frozen": ["stem", "nope"]}, {"start": 4, "unfreeze": 1}])
    found = {e.key: e for e in preflight(p)}
    assert "'nope'" in found["freeze.stages[0].frozen"].problem and not found["freeze.stages[0].frozen"].warning
    assert found["freeze.stages[1].start"].warning and "never runs" in found["freeze.stages[1].start"].problem
    p.freeze.stages = [{"start": "soon"}]  # set directly: only the value's own rule is said
    assert [e.key for e in preflight(p) if e.key.startswith("freeze.")] == ["freeze.stages[0].start"]
