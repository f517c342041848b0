"""Weights from wherever they come: the files other tools write load, and the log says what was recognised.

Each file is written here the way its tool writes it (DataParallel, PyTorch Lightning, the PyTorch tutorial,
timm's and torchvision's training scripts, half precision, a misleading suffix); the same recognition serves
the preflight (`zoo.weights_problem`) and the build (`zoo.build_model`), so the window and the CLI agree."""

import argparse
import sys
import types

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import mnasnet0_5, mobilenet_v3_small, squeezenet1_1

from engine.errors import WeightsError
from engine.model import zoo

ARCH = "squeezenet1_1"


@pytest.fixture(scope="module")
def state():
    torch.manual_seed(0)
    return squeezenet1_1().state_dict()


def built(path, notes=None):
    """The model built from `path`, after the preflight's own check found nothing wrong with the file."""
    assert zoo.weights_problem(ARCH, str(path)) is None
    return zoo.build_model(ARCH, str(path), notes=notes)


def same(model, state):
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_dataparallel_prefix_is_removed_and_said(tmp_path, state):
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.pth")
    notes = []
    assert same(built(tmp_path / "ddp.pth", notes), state)
    assert notes == [f"ddp.pth: removed prefix 'module.' from {len(state)} keys"]


def test_a_lightning_checkpoint(tmp_path, state):
    """A real checkpoint of PyTorch Lightning: the LightningModule holds the network as `model` and a weighted
    loss beside it, so its keys are 'model.*' and 'criterion.weight'."""
    import lightning as L

    class Classifier(L.LightningModule):
        def __init__(self, lr=0.1):
            super().__init__()
            self.save_hyperparameters()
            self.model = squeezenet1_1()
            self.model.load_state_dict(state)
            self.criterion = torch.nn.CrossEntropyLoss(weight=torch.ones(3))

    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path)
    trainer.strategy.connect(Classifier())
    trainer.save_checkpoint(tmp_path / "epoch=3.ckpt")
    notes = []
    assert same(built(tmp_path / "epoch=3.ckpt", notes), state)
    assert notes[0] == ("epoch=3.ckpt: read the state dict under 'state_dict'; not used: callbacks, epoch, global_step, "
                        "hparams_name, hyper_parameters (and 4 more)")
    assert notes[1] == f"epoch=3.ckpt: removed prefix 'model.' from {len(state)} keys"
    assert notes[2] == "epoch=3.ckpt: left out 1 keys outside 'model.' (not the model's): criterion.weight"


def test_old_lightning_hyper_parameters_are_read_as_data(tmp_path, state, monkeypatch):
    """pytorch_lightning 1.x pickled its hyper-parameters as an AttributeDict: read as a plain dict, its module
    never imported (written here under that class name, as those files hold it)."""
    module = types.ModuleType("pytorch_lightning.utilities.parsing")
    attribute_dict = type("AttributeDict", (dict,), {"__module__": module.__name__})
    module.AttributeDict = attribute_dict
    for name in ("pytorch_lightning", "pytorch_lightning.utilities", module.__name__):
        monkeypatch.setitem(sys.modules, name, module if name == module.__name__ else types.ModuleType(name))
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()},
                "hyper_parameters": attribute_dict(lr=0.1, backbone=ARCH)}, tmp_path / "old.ckpt")
    for name in ("pytorch_lightning", "pytorch_lightning.utilities", module.__name__):
        monkeypatch.delitem(sys.modules, name)
    assert same(built(tmp_path / "old.ckpt"), state)
    assert "pytorch_lightning" not in sys.modules


def test_the_pytorch_tutorial_checkpoint(tmp_path, state):
    """https://pytorch.org/tutorials/recipes/recipes/saving_and_loading_a_general_checkpoint.html"""
    model = squeezenet1_1()
    model.load_state_dict(state)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    optimizer.step()
    model.load_state_dict(state)
    torch.save({"epoch": 5, "model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "loss": torch.tensor(0.4)}, tmp_path / "checkpoint.tar")
    notes = []
    assert same(built(tmp_path / "checkpoint.tar", notes), state)
    assert notes == ["checkpoint.tar: read the state dict under 'model_state_dict'; not used: epoch, loss, "
                     "optimizer_state_dict"]


@pytest.mark.parametrize("layout", ["torchvision", "timm"])
def test_training_script_checkpoints_with_their_args(tmp_path, state, layout):
    """torchvision's references/classification/train.py and timm's train.py store the weights beside an
    argparse Namespace of the command line (timm also beside an EMA copy)."""
    args = argparse.Namespace(model=ARCH, lr=0.5, epochs=90)
    if layout == "torchvision":
        ckpt = {"model": state, "optimizer": {}, "lr_scheduler": {}, "epoch": 89, "args": args}
    else:
        ema = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
        ckpt = {"epoch": 89, "arch": ARCH, "state_dict": state, "optimizer": {}, "version": 2, "args": args,
                "metric": 61.2, "state_dict_ema": ema}
    torch.save(ckpt, tmp_path / "checkpoint.pth.tar")
    notes = []
    assert same(built(tmp_path / "checkpoint.pth.tar", notes), state)
    assert "read the state dict under" in notes[0] and "args" in notes[0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_cast_to_the_models_type(tmp_path, state, dtype):
    half = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    save_file(half, str(tmp_path / "half.safetensors"))
    notes = []
    model = built(tmp_path / "half.safetensors", notes)
    floats = sum(1 for v in state.values() if v.is_floating_point())
    name = str(dtype).replace("torch.", "")
    assert notes == [f"half.safetensors: cast {floats} {name} tensors to float32"]
    assert all(v.dtype == state[k].dtype and torch.equal(v, half[k].to(v.dtype)) for k, v in model.state_dict().items())


def test_the_format_comes_from_the_first_bytes_not_the_suffix(tmp_path, state):
    save_file(state, str(tmp_path / "really-safetensors.pth"))
    torch.save(state, tmp_path / "really-torch.safetensors")
    for name in ("really-safetensors.pth", "really-torch.safetensors"):
        assert same(built(tmp_path / name), state)


@pytest.mark.parametrize(("content", "named"), [
    (b"\x89HDF\r\n\x1a\n" + bytes(64), "an HDF5 file (Keras/TensorFlow weights)"),
    (b"<!DOCTYPE html><html><body>Sign in</body></html>", "a web page"),
    (b"", "an empty file"),
    (None, "a NumPy .npz archive"),
])
def test_foreign_files_are_named_when_refused(tmp_path, content, named):
    path = tmp_path / "weights.pth"
    if content is None:
        np.savez(tmp_path / "vit.npz", w=np.zeros(3))
        (tmp_path / "vit.npz").rename(path)
    else:
        path.write_bytes(content)
    problem = zoo.weights_problem(ARCH, str(path))
    assert problem is not None and f"weights.pth is {named}" in problem
    with pytest.raises(WeightsError) as err:
        zoo.build_model(ARCH, str(path))
    assert str(err.value) == problem


def test_a_pickled_full_model_is_still_refused(tmp_path):
    torch.save(squeezenet1_1(), tmp_path / "model.pt")
    problem = zoo.weights_problem(ARCH, str(tmp_path / "model.pt"))
    assert "pickled full model" in problem and "Unsupported global" in problem


def test_another_architectures_weights_are_recognised(tmp_path):
    """The message counts the tensors that match, names the first missing and unexpected keys, and the
    architecture the file does fit; the preflight says the same as the build."""
    save_file(mobilenet_v3_small().state_dict(), str(tmp_path / "mobile.safetensors"))
    problem = zoo.weights_problem("mobilenet_v3_large", str(tmp_path / "mobile.safetensors"))
    assert "of the model's 312 tensors match" in problem and "missing keys: " in problem
    assert "unexpected keys: " in problem and "tensors of another shape, e.g. features.0.0.weight" not in problem
    assert problem.endswith("These look like mobilenet_v3_small weights: set model.arch to mobilenet_v3_small")
    with pytest.raises(WeightsError) as err:
        zoo.build_model("mobilenet_v3_large", str(tmp_path / "mobile.safetensors"))
    assert str(err.value) == problem


def test_mnasnet_loads_from_a_plain_state_dict(tmp_path):
    """MNASNet reads its version from the state dict's _metadata, which safetensors and plain dicts lack."""
    torch.manual_seed(1)
    source = mnasnet0_5()
    save_file(source.state_dict(), str(tmp_path / "mnasnet.safetensors"))
    model = zoo.build_model("mnasnet0_5", str(tmp_path / "mnasnet.safetensors"))
    assert torch.equal(model.layers[0].weight, source.layers[0].weight)


def test_fingerprints_are_the_architectures_own():
    """The fingerprints Thaw ships (for its torchvision version) or computes are the skeleton's tensors."""
    from engine.model import lookalike

    for arch in ("resnet18", "vit_b_16", "mnasnet0_5"):
        facts = zoo.skeleton_facts(arch)
        backbone = lookalike._backbone(facts.shapes, facts.classifier_paths)
        assert lookalike.fingerprint(arch)["digest"] == lookalike._digest(backbone)
