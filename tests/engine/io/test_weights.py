"""Weight files: plain state dicts load; pickled models, damaged files and other architectures are refused clearly."""

import pytest
import torch
from torchvision.models import mobilenet_v3_small, squeezenet1_1

from engine.errors import WeightsError
from engine.io.weights import load_state_dict, save_safetensors
from engine.model import zoo


def test_safetensors_and_pth_round_trip(tmp_path):
    state = squeezenet1_1().state_dict()
    save_safetensors(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        loaded = load_state_dict(tmp_path / name)
        assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    model = zoo.build_model("squeezenet1_1", "w.pth", base_dir=tmp_path)
    assert torch.equal(model.features[0].weight, state["features.0.weight"])


def test_a_pickled_full_model_is_refused(tmp_path):
    torch.save(squeezenet1_1(), tmp_path / "model.pt")
    with pytest.raises(WeightsError, match="pickled full model") as err:
        load_state_dict(tmp_path / "model.pt")
    assert "model.pt" in str(err.value) and "state_dict()" in str(err.value)


@pytest.mark.parametrize("name", ["w.pth", "w.safetensors"])
def test_a_truncated_file_is_refused(tmp_path, name):
    state = squeezenet1_1().state_dict()
    full = tmp_path / f"full{name[1:]}"
    if name.endswith(".pth"):
        torch.save(state, full)
    else:
        save_safetensors(state, full)
    data = full.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated or damaged") as err:
        zoo.build_model("squeezenet1_1", str(tmp_path / name))
    assert name in str(err.value)


def test_a_state_dict_of_another_architecture_is_refused(tmp_path):
    torch.save(mobilenet_v3_small().state_dict(), tmp_path / "mobilenet.pth")
    with pytest.raises(WeightsError) as err:
        zoo.build_model("squeezenet1_1", str(tmp_path / "mobilenet.pth"))
    msg = str(err.value)
    assert "mobilenet.pth" in msg and "missing keys: features.0.bias" in msg and "unexpected keys" in msg


def test_a_tensor_of_another_shape_is_named(tmp_path):
    state = squeezenet1_1().state_dict()
    state["features.3.squeeze.weight"] = torch.zeros(1, 2, 1, 1)
    save_safetensors(state, tmp_path / "bad.safetensors")
    with pytest.raises(WeightsError, match=r"features\.3\.squeeze\.weight: the file has \(1, 2, 1, 1\)"):
        zoo.build_model("squeezenet1_1", str(tmp_path / "bad.safetensors"))


def test_a_fine_tuned_file_with_another_head_loads_its_backbone(tmp_path):
    from engine.model.heads import HeadSpec, replace_head

    source = squeezenet1_1()
    replace_head(source, HeadSpec(kind="mlp", hidden=(8,)), 3)
    save_safetensors(source.state_dict(), tmp_path / "tuned.safetensors")
    notes = []
    model = zoo.build_model("squeezenet1_1", "tuned.safetensors", base_dir=tmp_path, notes=notes)
    assert torch.equal(model.features[0].weight, source.features[0].weight)
    assert notes and "classifier" in notes[0]


def test_missing_a_folder_and_another_format_are_named(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_state_dict(tmp_path / "nope.pth")
    (tmp_path / "weights").mkdir()
    with pytest.raises(WeightsError, match="is a folder, not a weights file"):
        load_state_dict(tmp_path / "weights")
    (tmp_path / "w.bin").write_bytes(b"x" * 100)
    with pytest.raises(WeightsError, match="neither safetensors nor PyTorch"):
        load_state_dict(tmp_path / "w.bin")
