"""The export in a process of its own (what the window uses): the same bundle and outcomes as in this process,
a stop and a bad run folder said the same way, and this process left free of torch.export's process-wide state
while it runs (a model built beside an in-process export failed now and again with KeyError('custom'))."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from engine.errors import ThawError
from engine.export.bundle import ExportStopped
from engine.export.own_process import export_run_in_own_process
from engine.model import zoo
from engine.runs import folder as run
from tests.imagesets import shapes_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("run")
    run_dir, _ = run.train(shapes_project(base, train__epochs=1, train__device="cpu"), base / "out")
    return run_dir


def test_the_bundle_comes_back_verified_while_this_process_builds_models(trained, tmp_path):
    said, outcome, seen_exporting = [], [], []

    def export() -> None:
        outcome.append(export_run_in_own_process(trained, tmp_path / "bundle", ["onnx", "pt2"], progress=said.append))

    exporter = threading.Thread(target=export)
    exporter.start()
    while exporter.is_alive():  # what the window does beside an export: check projects, build skeletons
        seen_exporting.append(torch.compiler.is_exporting())
        zoo.build_skeleton("mobilenet_v3_small")
    exporter.join()
    result = outcome[0]
    assert result.written == ["onnx", "pt2"] and not result.failed and {c.fmt for c in result.checks} == {"onnx", "pt2"}
    assert json.loads((tmp_path / "bundle" / "export.json").read_text())["formats"] == ["onnx", "pt2"]
    assert said[:2] == ["starting the export's process", "loading the run's model"]
    assert "tracing the model (torch.export)" in said
    assert seen_exporting and not any(seen_exporting)


def test_a_stop_and_a_bad_run_folder_are_said_as_in_this_process(trained, tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(ExportStopped):
        export_run_in_own_process(trained, tmp_path / "stopped", ["pt2"], stop=stop)
    assert not (tmp_path / "stopped").exists()
    with pytest.raises(ThawError, match="model.safetensors"):
        export_run_in_own_process(tmp_path, tmp_path / "out", ["pt2"])
    assert not (tmp_path / "out").exists()
