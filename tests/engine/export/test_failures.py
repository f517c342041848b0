"""When export cannot do all it was asked: an operator the ONNX exporter lacks (named; the other formats still
written), a graph that computes something else than PyTorch (an error; nothing left behind), a stop."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
import torch
from torch import nn

from engine.cli import main
from engine.export import bundle as export_bundle
from engine.export.bundle import ExportStopped, export_model
from engine.export.graph import VerificationFailed, operator_in
from engine.results.predict import load_run
from tests.imagesets import shapes_project


@torch.library.custom_op("thawtest::wobble", mutates_args=())
def wobble(x: torch.Tensor) -> torch.Tensor:
    """An operator of our own: torch.export traces it, ONNX has no function for it."""
    return x.clone()


@wobble.register_fake
def _(x):
    return torch.empty_like(x)


class Wobbly(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.ops.thawtest.wobble(x))


class Drifting(nn.Module):
    """Adds how often it was called: the traced graph keeps the count of the call it was traced on."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x) + self.calls


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from engine.runs import folder as run

    base = tmp_path_factory.mktemp("run")
    folder, _ = run.train(shapes_project(base, train__epochs=1, train__device="cpu", train__amp=False), base / "out")
    return folder


def with_model(run_dir, wrap):
    trained = load_run(run_dir, device="cpu")
    return dataclasses.replace(trained, model=wrap(trained.model).eval())


def test_an_operator_onnx_lacks_is_named_and_the_other_formats_are_still_written(run_dir, tmp_path):
    result = export_model(with_model(run_dir, Wobbly), tmp_path / "out", ["onnx", "pt2"])
    assert result.written == ["pt2", "safetensors"]  # the weights join in, so the bundle holds the model
    assert result.failed["onnx"].operator == "thawtest::wobble" and "thawtest::wobble" in str(result.failed["onnx"])
    assert "formats that work for this model: pt2, safetensors (the bundle holds pt2, safetensors)" in result.summary()
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"model.pt2", "model.safetensors", "labels.json", "preprocessing.json", "export.json"} <= names
    assert not names & {"model.onnx", "predict.py", "reference"}
    report = json.loads((tmp_path / "out" / "export.json").read_text())
    assert report["failed"]["onnx"]["operator"] == "thawtest::wobble" and report["verification"]["pt2"]["verified"]


def test_the_command_line_says_which_operator_and_exits_1(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export_bundle, "load_run", lambda folder, device: with_model(folder, Wobbly))
    assert main(["export", str(run_dir), "--out", str(tmp_path / "out"), "--format", "onnx"]) == 1
    out, err = capsys.readouterr()
    assert "no ONNX function for operator thawtest::wobble" in out and "onnx could not be exported" in err
    assert "formats that work for this model: pt2, safetensors (the bundle holds safetensors)" in out
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"model.safetensors", "labels.json", "preprocessing.json"}


def test_a_graph_that_computes_something_else_is_an_error_and_nothing_is_left(run_dir, tmp_path):
    with pytest.raises(VerificationFailed, match="does not compute what the PyTorch model computes"):
        export_model(with_model(run_dir, Drifting), tmp_path / "out", ["pt2"])
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor its staging folder


def test_a_verification_failure_exits_1_from_the_command_line(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export_bundle, "load_run", lambda folder, device: with_model(folder, Drifting))
    assert main(["export", str(run_dir), "--out", str(tmp_path / "out"), "--format", "onnx,pt2"]) == 1
    assert "nothing was written" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_a_stop_ends_the_export_with_nothing_written(run_dir, tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(ExportStopped):
        export_model(load_run(run_dir, device="cpu"), tmp_path / "out", ["pt2"], stop=stop)
    assert list(tmp_path.iterdir()) == []


def test_the_operator_is_read_from_the_exporters_words():
    assert operator_in(RuntimeError("No ONNX function found for <OpOverload(op='aten.fancy', overload='default')>")) \
        == "aten::fancy"
    assert operator_in(RuntimeError("Unsupported: aten::_upsample_bicubic2d_aa.default")) == \
        "aten::_upsample_bicubic2d_aa.default"
    assert operator_in(RuntimeError("something else went wrong")) is None
