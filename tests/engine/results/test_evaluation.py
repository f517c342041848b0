"""A run's model loaded back and evaluated: at the end of a run (its validation split when it has no test
split), from the command line on its own split or another folder, `predict` agreeing with `evaluate`, and the
run folders that cannot be evaluated saying why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.errors import DataError, RunError
from engine.results import evaluation
from engine.results.predict import load_run
from engine.runs import folder as run
from tests.imagesets import make_image_folder


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One finished run of the demo CNN on drawn shapes, shared by the tests that only read it."""
    from tests.imagesets import shapes_project

    base = tmp_path_factory.mktemp("run")
    project = shapes_project(base, train__epochs=3, train__device="cpu", train__amp=False)
    run_dir, result = run.train(project, base / "out")
    return run_dir, result


def test_a_finished_run_evaluates_its_kept_model_on_its_validation_split(trained_run):
    run_dir, result = trained_run
    report = json.loads((run_dir / "evaluation.json").read_text())
    assert report["split"] == "validation" and report["images"] == result.summary["val_size"] == 6
    assert report["accuracy"] == pytest.approx(result.summary["best_val_accuracy"])  # the same model, same images
    assert report["classes"] == ["circle", "square", "triangle"]
    assert report["model_sha256"] == load_run(run_dir).model_hash and len(report["model_sha256"]) == 64
    assert len(report["confusion"]) == 3 and sum(map(sum, report["confusion"])) == 6
    assert report["calibration"]["ece"] is not None and set(report["top_k_accuracy"]) == {"1", "2", "3"}
    rows = (run_dir / "predictions.csv").read_text().splitlines()
    assert rows[0] == "path,label,predicted,confidence,loss,top5" and len(rows) == 7


def test_an_evaluation_reads_back_as_it_was_written(trained_run):
    run_dir, _ = trained_run
    again = evaluation.evaluate_run(load_run(run_dir))
    back = evaluation.read(run_dir)
    p, q = again.predictions, back.predictions
    assert back.report["accuracy"] == again.report["accuracy"] and p.paths == q.paths
    assert (p.labels == q.labels).all() and (p.top_classes == q.top_classes).all()
    assert np.allclose(p.top_probs, q.top_probs, atol=1e-6) and np.allclose(p.losses, q.losses, rtol=1e-5)


def test_the_end_of_a_run_evaluates_the_images_it_decoded_already(trained_run, monkeypatch):
    """The run's validation images, decoded once while it trained, are evaluated as kept: no image read again,
    the same predictions to the bit as images decoded anew; a dataset another model would see differently
    (another size) is decoded anew."""
    from engine import loading
    from engine.results.predict import predict

    run_dir, result = trained_run
    trained, held = load_run(run_dir), result.data.val
    fresh, _ = predict(trained, held.samples)
    opened = []
    monkeypatch.setattr(loading, "open_image", lambda path, read=loading.open_image: opened.append(path) or read(path))
    kept, _ = predict(trained, held.samples, decoded=held)
    assert not opened and kept.paths == fresh.paths
    for a, b in ((kept.top_classes, fresh.top_classes), (kept.top_probs, fresh.top_probs), (kept.losses, fresh.losses)):
        assert np.array_equal(a, b)
    other = loading.ImageDataset(held.samples, held.transform, held.image_size + 8, cache=True)
    predict(trained, held.samples, decoded=other)
    assert len(opened) == len(held)


def test_predict_on_the_validation_images_agrees_with_evaluate(trained_run, capsys):
    run_dir, _ = trained_run
    evaluated = evaluation.read(run_dir).predictions
    assert main(["predict", str(run_dir), *evaluated.paths, "--json", "--top", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)["predictions"]
    assert [r["path"] for r in rows] == evaluated.paths
    for i, r in enumerate(rows):
        assert [t["class"] for t in r["top"]] == [evaluated.classes[c] for c in evaluated.top_classes[i, :2]]
        assert r["top"][0]["probability"] == pytest.approx(evaluated.confidence[i], abs=1e-6)


def test_the_cli_prints_the_per_class_table_and_the_json(trained_run, capsys):
    run_dir, _ = trained_run
    assert main(["evaluate", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "class" in out and "precision" in out and "macro avg" in out and "calibration error" in out
    assert all(name in out for name in ("circle", "square", "triangle"))
    assert main(["evaluate", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] == "validation"


def test_another_folder_is_evaluated_beside_the_run_not_in_the_data(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    other = make_image_folder(tmp_path / "more", per_class=3, seed=7)
    before = sorted(p.name for p in other.rglob("*"))
    assert main(["evaluate", str(run_dir), "--data", str(other)]) == 0
    written = list((run_dir / "evaluations").glob("more-*/evaluation.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["images"] == 9
    assert json.loads(written[0].read_text())["source"] == str(other)
    assert sorted(p.name for p in other.rglob("*")) == before  # the data folder is never written
    assert json.loads((run_dir / "evaluation.json").read_text())["split"] == "validation"  # the run's own stays
    capsys.readouterr()


def test_a_folder_with_a_class_the_model_does_not_know_is_refused(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    other = make_image_folder(tmp_path / "odd", per_class=2, classes=("circle", "star"))
    assert main(["evaluate", str(run_dir), "--data", str(other)]) == 2
    assert "classes the model does not know: 'star'" in capsys.readouterr().err


def test_run_folders_that_cannot_be_evaluated_say_why(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    with pytest.raises(RunError, match="is not a folder"):
        load_run(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunError, match="holds no model.safetensors"):
        load_run(empty)
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a tensor file")
    assert main(["evaluate", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "model.safetensors" in err
    (broken / "labels.json").unlink()
    with pytest.raises(RunError, match="no labels.json"):
        load_run(broken)


def test_predict_names_what_cannot_be_read(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["predict", str(run_dir), str(bad)]) == 2
    assert f"{bad} cannot be used" in capsys.readouterr().err
    empty = tmp_path / "none"
    empty.mkdir()
    assert main(["predict", str(run_dir), str(empty)]) == 2
    assert "no usable images" in capsys.readouterr().err
    with pytest.raises(DataError, match="does not exist"):
        from engine.results.predict import image_files

        image_files([tmp_path / "missing.png"])


def test_a_stopped_evaluation_writes_nothing(trained_run, tmp_path):
    import threading

    run_dir, _ = trained_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for name in ("evaluation.json", "predictions.csv"):
        (copy / name).unlink()
    stop = threading.Event()
    stop.set()
    assert evaluation.evaluate_run(load_run(copy), stop=stop) is None
    assert not (copy / "evaluation.json").exists() and not (copy / "predictions.csv").exists()


def test_predict_with_cam_writes_one_overlay_per_image_outside_the_data(trained_run, tmp_path, capsys):
    from PIL import Image

    run_dir, _ = trained_run
    images = evaluation.read(run_dir).predictions.paths[:3]
    out = tmp_path / "cams"
    assert main(["predict", str(run_dir), *images, "--cam", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["predictions"]
    written = [row["cam"] for row in rows]
    assert len(set(written)) == 3 and all(p.startswith(str(out)) for p in written)
    size = load_run(run_dir).image_size
    for path in written:
        with Image.open(path) as im:
            assert im.size == (size, size) and im.mode == "RGB"
    before = {p: p.read_bytes() for p in out.iterdir()}
    assert main(["predict", str(run_dir), images[0], "--cam", str(out), "--json"]) == 0  # nothing replaced
    new = Path(json.loads(capsys.readouterr().out)["predictions"][0]["cam"])
    assert new not in before and new.name.startswith(f"{Path(images[0]).stem}-cam-")
    assert {p: p.read_bytes() for p in out.iterdir() if p != new} == before
    folder = str(Path(images[0]).parent)
    assert main(["predict", str(run_dir), folder, "--cam", str(Path(folder) / "cams")]) == 2
    assert "inside the image folder" in capsys.readouterr().err


def test_a_run_is_fed_as_it_was_trained(trained_run, tmp_path):
    """The preprocessing a run trained with is kept in summary.json; the run's model is fed with it (a model zoo
    that says otherwise later, e.g. after a timm update, changes nothing); a run without it uses the zoo's."""
    run_dir, result = trained_run
    from engine.model import zoo

    kept = json.loads((run_dir / "summary.json").read_text())["preprocess"]
    zoos = zoo.arch_info(result.summary["arch"]).preprocess
    assert kept == {"resize": 32, "crop": 32, "mean": list(zoos.mean), "std": list(zoos.std), "interpolation": "bilinear"}
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["preprocess"]["mean"] = [0.25, 0.5, 0.75]
    (copy / "summary.json").write_text(json.dumps(summary))
    normalize = load_run(copy).transform.transforms[-1]
    assert list(normalize.mean) == [0.25, 0.5, 0.75]
    del summary["preprocess"]
    (copy / "summary.json").write_text(json.dumps(summary))
    assert list(load_run(copy).transform.transforms[-1].mean) == list(zoos.mean)
