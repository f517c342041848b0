"""A trained run exported from the command line: what the bundle holds, that ONNX and .pt2 load back and agree
with PyTorch, that predict.py works where neither torch nor Thaw can be imported, and that nothing the person
owns is replaced."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import onnxruntime
import pytest
import torch

from engine.cli import main
from engine.export import graph
from engine.export.bundle import export_run
from engine.results.evaluation import read
from engine.results.predict import load_run
from engine.runs import folder as run
from tests.exportruns import run_alone
from tests.imagesets import make_image_folder, shapes_project

FILES = {"model.onnx", "model.pt2", "model.safetensors", "labels.json", "preprocessing.json", "signature.json",
         "README.md", "predict.py", "requirements.txt", "reference", "export.json"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run of the demo CNN on drawn shapes (trained for real: 3 epochs)."""
    base = tmp_path_factory.mktemp("run")
    run_dir, _ = run.train(shapes_project(base, train__epochs=3, train__device="cpu", train__amp=False), base / "out")
    return run_dir


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "shapes-model"
    assert main(["export", str(trained), "--out", str(out)]) == 0
    return out


def test_the_bundle_holds_every_part_and_its_verification(bundle, trained):
    assert {p.name for p in bundle.iterdir()} == FILES  # no model.onnx.data: the weights are inside
    report = json.loads((bundle / "export.json").read_text())
    assert report["formats"] == ["onnx", "pt2", "safetensors"] and report["failed"] == {}
    for fmt in ("onnx", "pt2"):
        check = report["verification"][fmt]
        assert check["verified"] and check["batches"] == [1, 3] and check["images"] == 6 and check["same_top1"]
        assert check["max_abs_diff"] <= 1e-4
    assert "run's evaluation" in report["images_from"]  # real images, not noise
    assert json.loads((bundle / "labels.json").read_text()) == ["circle", "square", "triangle"]
    assert (bundle / "model.safetensors").read_bytes() == (trained / "model.safetensors").read_bytes()
    assert report["model_sha256"] == load_run(trained).model_hash
    pre = json.loads((bundle / "preprocessing.json").read_text())
    assert pre["center_crop"] == [32, 32] and pre["channel_order"] == "RGB" and pre["decode"]["background"] == [255] * 3
    sig = json.loads((bundle / "signature.json").read_text())
    assert sig["inputs"]["input"]["shape"] == ["batch", 3, 32, 32] and sig["outputs"]["logits"]["shape"] == ["batch", 3]
    listed = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {"export.json"}
    assert set(report["files"]) == listed and len(listed) == 10 + 4  # four reference images


def test_onnx_has_a_symbolic_batch_and_carries_labels_and_preprocessing(bundle, trained, tmp_path):
    copy = shutil.copytree(bundle, tmp_path / "elsewhere")  # loads from a copy in another folder: nothing outside
    session = onnxruntime.InferenceSession(str(copy / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch" and session.get_outputs()[0].shape[0] == "batch"
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["thaw.labels"]) == json.loads((bundle / "labels.json").read_text())
    assert json.loads(meta["thaw.preprocessing"]) == json.loads((bundle / "preprocessing.json").read_text())
    model = load_run(trained, device="cpu").model
    for n in (1, 7):
        x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(n))
        got = session.run(["logits"], {"input": x.numpy()})[0]
        with torch.inference_mode():
            np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-3, atol=1e-4)


def test_the_pt2_program_loads_back_with_its_files_and_any_batch(bundle, trained):
    module, extra = graph.load_pt2(bundle / "model.pt2", ("labels.json", "preprocessing.json"))
    assert json.loads(extra["labels.json"]) == ["circle", "square", "triangle"]
    assert json.loads(extra["preprocessing.json"]) == json.loads((bundle / "preprocessing.json").read_text())
    model = load_run(trained, device="cpu").model
    x = torch.randn(7, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(module(x), model(x))


def test_predict_py_selftest_passes_where_torch_and_thaw_cannot_be_imported(bundle, tmp_path):
    done = run_alone(bundle, "--selftest", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "import torch: ModuleNotFoundError" in done.stdout and "import engine: ModuleNotFoundError" in done.stdout
    assert "passed" in done.stdout and "largest difference" in done.stdout


def test_predict_py_gives_thaws_predictions_for_seven_images_in_one_batch(bundle, trained, tmp_path):
    evaluated = read(trained).predictions
    images = tmp_path / "seven"
    images.mkdir()
    for i, path in enumerate(evaluated.paths[:6]):
        shutil.copyfile(path, images / f"{i}.png")
    shutil.copyfile(evaluated.paths[0], images / "6.png")
    done = run_alone(bundle, str(images), "--json", "--top", "2", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout[done.stdout.index("{"):])["predictions"]
    assert len(rows) == 7
    for row in rows:
        j = int(row["path"].rsplit("/", 1)[1].split(".")[0]) % 6  # 6.png is a copy of 0.png
        assert [t["class"] for t in row["top"]] == [evaluated.classes[c] for c in evaluated.top_classes[j, :2]]
        assert row["top"][0]["probability"] == pytest.approx(evaluated.confidence[j], abs=1e-4)


@pytest.mark.parametrize("edit", [("mean", [0.5, 0.5, 0.5]), ("center_crop", [30, 30])])
def test_an_edited_preprocessing_json_fails_the_selftest(bundle, tmp_path, edit):
    copy = shutil.copytree(bundle, tmp_path / "edited")
    pre = json.loads((copy / "preprocessing.json").read_text())
    key, value = edit
    pre[key] = value
    (copy / "preprocessing.json").write_text(json.dumps(pre))
    done = run_alone(copy, "--selftest", tmp=tmp_path)
    assert done.returncode == 1 and "FAILED" in done.stdout


def test_an_earlier_export_is_replaced_and_a_folder_of_the_persons_is_refused(trained, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["export", str(trained), "--out", str(out), "--format", "safetensors"]) == 0
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "labels.json", "preprocessing.json",
                                               "signature.json", "README.md", "export.json"}
    assert main(["export", str(trained), "--out", str(out), "--format", "pt2"]) == 0  # an earlier export: replaced
    assert (out / "model.pt2").is_file() and not (out / "model.safetensors").exists()
    (out / "notes.txt").write_text("mine")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    capsys.readouterr()
    assert main(["export", str(trained), "--out", str(out), "--format", "pt2"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "photo.jpg").write_bytes(b"x")
    assert main(["export", str(trained), "--out", str(theirs), "--format", "pt2"]) == 2
    assert "not an earlier Thaw export" in capsys.readouterr().err
    assert [p.name for p in theirs.iterdir()] == ["photo.jpg"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("args, words", [
    (["--format", "onnx,tflite"], "unknown export format tflite"),
    (["--out", "{data}/circle/export"], "inside the data folder"),
])
def test_bad_input_exits_2_and_writes_nothing(trained, tmp_path, capsys, args, words):
    data = load_run(trained).project.resolve(load_run(trained).project.data.train)
    before = sorted(p for p in data.rglob("*"))
    assert main(["export", str(trained), *[a.format(data=data) for a in args]]) == 2
    assert words in capsys.readouterr().err
    assert sorted(p for p in data.rglob("*")) == before


def test_a_folder_that_is_not_a_run_exits_2(tmp_path, capsys):
    make_image_folder(tmp_path / "images", per_class=1)
    assert main(["export", str(tmp_path / "images"), "--out", str(tmp_path / "x")]) == 2
    assert "model.safetensors" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_zip_writes_one_file_holding_the_bundle(trained, tmp_path):
    assert main(["export", str(trained), "--out", str(tmp_path / "shapes"), "--zip", "--format", "pt2"]) == 0
    with zipfile.ZipFile(tmp_path / "shapes.zip") as z:
        names = set(z.namelist())
        assert {"shapes/model.pt2", "shapes/export.json", "shapes/labels.json"} <= names
        assert json.loads(z.read("shapes/export.json"))["verification"]["pt2"]["verified"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes.zip"]
    assert main(["export", str(trained), "--out", str(tmp_path / "shapes.zip"), "--zip", "--format", "pt2"]) == 0
    (tmp_path / "other.zip").write_bytes(b"not mine to replace")
    assert main(["export", str(trained), "--out", str(tmp_path / "other.zip"), "--zip", "--format", "pt2"]) == 2
    assert (tmp_path / "other.zip").read_bytes() == b"not mine to replace"


def test_images_gone_the_check_uses_noise_and_says_so(trained, tmp_path):
    moved = shutil.copytree(trained, tmp_path / "run")
    (moved / "predictions.csv").write_text("path,label,predicted,confidence,loss,top5\n")
    result = export_run(moved, tmp_path / "out", ["pt2"])
    assert "random noise" in result.report["images_from"] and result.checks[0].passed
