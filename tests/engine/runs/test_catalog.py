"""The run folders of a project, read back: their settings, how each run stands, its results, its curves (the
same epochs the run had), and which settings differ between runs."""

from __future__ import annotations

import json
import math
import shutil
import threading

import pytest

from engine import events as ev
from engine import project as proj
from engine.errors import RunError
from engine.runs import catalog
from engine.runs import folder as run
from tests.imagesets import shapes_project


class StopAfterFirstEpoch(ev.Handler):
    def __init__(self) -> None:
        self.stop = threading.Event()

    def on_epoch_ended(self, _event: ev.EpochEnded) -> None:
        self.stop.set()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs of one project in one output folder: a finished one, the same at another learning rate and
    name (and another number of last blocks, which a full fine-tune does not use), and one stopped after its
    first epoch. Returns {label: (run_dir, FitResult)} and the project."""
    base = tmp_path_factory.mktemp("runs")
    project = shapes_project(base, train__epochs=2, train__device="cpu", train__amp=False)
    made = {"first": run.train(project, base / "runs" / "first")}
    other = project.copy()
    other.set("train.lr", 0.05)
    other.set("freeze.last_blocks", 3)
    other.name = "renamed"
    made["second"] = run.train(other, base / "runs" / "second")
    stopper = StopAfterFirstEpoch()
    made["stopped"] = run.train(project, base / "runs" / "stopped", callbacks=[stopper], stop=stopper.stop)
    return made, project


def test_a_project_lists_its_runs_newest_first_with_their_settings_and_results(runs):
    made, project = runs
    (project.resolve("runs") / "not-a-run").mkdir()
    found = catalog.project_runs(project)
    assert [r.name for r in found] == ["stopped", "second", "first"]
    first = next(r for r in found if r.name == "first")
    run_dir, result = made["first"]
    assert first.folder == run_dir and first.status == "finished" and first.has_model
    assert first.settings["train.lr"] == 0.01 and first.settings["model.arch"] == "thaw_digits_cnn"
    assert set(first.settings) == set(proj.KEYS)
    assert first.best_val_accuracy == pytest.approx(result.summary["best_val_accuracy"])
    assert first.epochs_completed == 2 and first.steps_per_epoch == 3  # 18 training images in batches of 8
    e = first.evaluation
    report = json.loads((run_dir / "evaluation.json").read_text())
    assert e.split == "validation" and e.images == 6 and e.accuracy == report["accuracy"]
    assert e.macro_f1 == report["averages"]["macro"]["f1"] and e.ece == report["calibration"]["ece"]
    assert e.describe() == f"validation split: {e.accuracy:.1%}, 6 images"
    assert catalog.runs_in(project.resolve("nowhere")) == []


def test_how_each_run_stands(runs, tmp_path):
    made, _ = runs
    stopped = catalog.read_run(made["stopped"][0])
    assert stopped.status == "stopped" and stopped.has_checkpoint and stopped.has_model
    assert stopped.evaluation is None  # a stopped run is not evaluated
    crashed = tmp_path / "crashed"
    shutil.copytree(made["stopped"][0], crashed)
    (crashed / "summary.json").unlink()  # as a run killed after its checkpoint
    record = catalog.read_run(crashed)
    assert record.status == "interrupted" and record.fit_ended() is None and record.steps_per_epoch is None
    (crashed / "checkpoint.safetensors").unlink()
    assert catalog.read_run(crashed).status == "incomplete"


def test_a_run_ends_as_it_ended_and_its_curves_are_its_epochs(runs):
    made, _ = runs
    run_dir, result = made["first"]
    record = catalog.read_run(run_dir)
    ended = record.fit_ended()
    assert ended.run_dir == str(run_dir) and ended.epochs_completed == 2 and ended.frozen_verified
    assert ended.best_val_accuracy == pytest.approx(result.summary["best_val_accuracy"])
    epochs = catalog.history(run_dir, record.summary)
    assert [e.epoch for e in epochs] == [h.epoch for h in result.history]
    for got, had in zip(epochs, result.history, strict=True):
        for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
            assert getattr(got, name) == pytest.approx(getattr(had, name), rel=1e-5), name
        assert got.images_per_second == pytest.approx(18 / had.train_seconds, rel=1e-4)
    assert epochs[-1].best_val_accuracy == pytest.approx(max(h.val_accuracy for h in result.history), rel=1e-5)


def test_only_the_settings_the_runs_used_differently_differ(runs):
    made, _ = runs
    first, second, stopped = (catalog.read_run(made[k][0]) for k in ("first", "second", "stopped"))
    assert catalog.differing([first, second]) == ["train.lr"]  # not the name, nor last_blocks (unused by "full")
    assert catalog.differing([first, stopped]) == []
    assert catalog.differing([first]) == []
    last = {**first.settings, "freeze.preset": "last_blocks"}
    assert catalog.applies(last, "freeze.last_blocks") and not catalog.applies(first.settings, "freeze.last_blocks")
    both = [first, catalog.RunRecord(**{**first.__dict__, "settings": last})]
    assert catalog.differing(both) == ["freeze.preset", "freeze.last_blocks"]


def test_what_is_not_a_run_or_is_damaged_says_why(runs, tmp_path):
    made, _ = runs
    with pytest.raises(RunError, match="is not a folder"):
        catalog.read_run(tmp_path / "nowhere")
    with pytest.raises(RunError, match="has no project.thaw.toml"):
        catalog.read_run(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(made["first"][0], broken)
    (broken / "metrics.csv").write_text("epoch,split\nx,train\n")
    with pytest.raises(RunError, match="metrics.csv is damaged"):
        catalog.history(broken)
    (broken / "metrics.csv").unlink()
    assert catalog.history(broken) == []
    (broken / "summary.json").write_text("{not json")
    damaged = catalog.read_run(broken)  # read as a run without its summary
    assert damaged.summary == {} and damaged.status == "incomplete" and damaged.fit_ended() is None
    (broken / "project.thaw.toml").write_text("[train]\nepochs = 'many'\n")
    with pytest.raises(RunError, match="cannot read the run"):
        catalog.read_run(broken)
    assert broken not in [r.folder for r in catalog.runs_in(tmp_path)]


def test_evaluations_of_other_sources_are_listed_after_the_runs_own(runs, tmp_path):
    from engine.results.evaluation import evaluate_run
    from engine.results.predict import load_run
    from tests.imagesets import make_image_folder

    made, _ = runs
    copy = tmp_path / "copy"
    shutil.copytree(made["first"][0], copy)
    other = make_image_folder(tmp_path / "more", per_class=2, seed=3)
    evaluate_run(load_run(copy), other)
    found = catalog.evaluations(catalog.read_run(copy))
    assert [e.split for e in found] == ["validation", "other"] and found[1].images == 6
    assert found[1].source == str(other) and found[1].describe().startswith("more: ")
    assert not math.isnan(found[1].accuracy)
