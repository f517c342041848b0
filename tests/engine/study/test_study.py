"""The transfer study end to end: real runs of a tiny project, the table, stopping and continuing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from engine import events as ev
from engine import project as proj
from engine.data import Sample
from engine.errors import ThawError
from engine.study import recipes
from engine.study.runner import STUDY_FILE, TABLE_FILE, Settings, Study, default_folder, subset


def tiny(project_factory, **kw):
    """The demo CNN with its shipped weights on drawn shapes: 8 per class, 2 for validation, 2 for test."""
    settings = {"model__weights": "pretrained", "data__val_fraction": 0.25, "data__test_fraction": 0.25,
                "train__epochs": 2, **kw}
    return project_factory(**settings)


def test_a_tiny_study_end_to_end(project_factory, tmp_path):
    project = tiny(project_factory)
    seen = []
    study = Study(project, tmp_path / "study", Settings(["scratch", "fe", "last1"], seeds=2, per_class=(3,)))
    state = study.run(progress=seen.append)
    cells = state["cells"]
    assert [c["name"] for c in cells] == ["3-per-class-seed0", "3-per-class-seed1"]
    for cell in cells:
        assert cell["advice"]["recipe"] in cell["runs"]  # the advisor's pick is always run
        for name, run in cell["runs"].items():
            folder = tmp_path / "study" / "runs" / f"{cell['name']}-{name}"
            assert run["run_dir"] == str(folder) and (folder / "model.safetensors").is_file()
            assert run["split"] == "test" and 0 <= run["accuracy"] <= 1 and run["seconds"] > 0
    # the same images within a seed: 3 per class from the seed's split, the test split shared by every recipe
    train = (tmp_path / "study" / "splits" / "seed0" / "train-3.csv").read_text().splitlines()
    assert len(train) == 1 + 9 and (tmp_path / "study" / "splits" / "seed0" / "test.csv").is_file()
    table = state["tables"][0]
    rows = {r["recipe"]: r for r in table["rows"]}
    assert {"scratch", "fe", "last1"} <= set(rows) and table["split"] == "test"
    assert rows["scratch"]["vs_scratch"] is None
    fe = rows["fe"]["vs_scratch"]
    assert len(fe["diffs"]) == 2 and fe["won"] + fe["tied"] + fe["lost"] == 2
    assert sum(r["picked"] for r in table["rows"]) == 2
    assert table["advisor"]["best"] in rows and table["advisor"]["gap"] >= 0
    md = (tmp_path / "study" / TABLE_FILE).read_text()
    assert "| feature extraction |" in md and "★" in md and "(runs/3-per-class-seed0-fe)" in md
    assert json.loads((tmp_path / "study" / STUDY_FILE).read_text())["tables"] == state["tables"]
    assert seen[-1].done == seen[-1].total - 1 and seen[-1].eta_seconds is not None
    assert study.store.reused > 0  # the second seed's feature extraction took the first one's features


def test_stopped_and_continued_it_keeps_what_is_done(project_factory, tmp_path):
    project = tiny(project_factory, data__test_fraction=0.0)
    settings = Settings(["fe", "last1"], seeds=1)
    stop = threading.Event()

    def stop_after_the_first_run(p):
        if p.done == 1:
            stop.set()

    state = Study(project, tmp_path / "s", settings).run(progress=stop_after_the_first_run, stop=stop)
    done = {n: r for n, r in state["cells"][0]["runs"].items() if r["accuracy"] is not None}
    assert len(done) == 1 and "1 of" in (tmp_path / "s" / TABLE_FILE).read_text()
    (name, first), = done.items()
    stamp = (tmp_path / "s" / "runs" / f"all-seed0-{name}" / "model.safetensors").stat().st_mtime_ns
    state = Study(project, tmp_path / "s", settings).run()
    assert all(r["accuracy"] is not None for r in state["cells"][0]["runs"].values())
    assert state["cells"][0]["runs"][name] == first  # not trained again
    assert (tmp_path / "s" / "runs" / f"all-seed0-{name}" / "model.safetensors").stat().st_mtime_ns == stamp
    assert state["tables"][0]["split"] == "validation"  # no test split: the validation accuracy


def test_a_run_ended_in_its_first_epoch_is_trained_anew_when_the_study_goes_on(project_factory, tmp_path):
    """A run keeps no checkpoint before its first epoch ends: one stopped there (summary: 0 epochs) or killed
    there (no summary) has nothing to continue. Going on trains it anew in its folder, instead of refusing the
    folder as holding a run or counting its 0 epochs as a result."""
    project = tiny(project_factory, data__test_fraction=0.0)
    settings = Settings(["fe"], seeds=1)
    stop = threading.Event()

    class StopInEpoch1(ev.Handler):
        def on_batch_ended(self, e):
            stop.set()

    state = Study(project, tmp_path / "s", settings).run(callbacks=[StopInEpoch1()], stop=stop)
    name, run = next(iter(state["cells"][0]["runs"].items()))  # the first run, stopped in its first batch
    folder = Path(run["run_dir"])
    assert run["accuracy"] is None and json.loads((folder / "summary.json").read_text())["epochs_completed"] == 0
    state = Study(project, tmp_path / "s", settings).run()
    first = dict(state["cells"][0]["runs"][name])
    assert first["accuracy"] is not None and (folder / "model.safetensors").is_file()
    for stale in ("model.safetensors", "summary.json", "evaluation.json", "predictions.csv"):
        (folder / stale).unlink(missing_ok=True)  # as a run killed in its first epoch leaves its folder
    state["cells"][0]["runs"][name]["accuracy"] = None
    (tmp_path / "s" / STUDY_FILE).write_text(json.dumps(state))
    state = Study(project, tmp_path / "s", settings).run()
    assert state["cells"][0]["runs"][name]["accuracy"] == first["accuracy"]  # the same seed, the same run
    events = [json.loads(line)["event"] for line in (folder / "events.jsonl").read_text().splitlines()]
    assert events.count("fit_started") == 1  # the folder's old files went: made anew by the new run


def test_a_folder_of_another_study_or_of_other_files_is_refused(project_factory, tmp_path):
    project = tiny(project_factory)
    Study(project, tmp_path / "s", Settings(["fe"])).save()
    with pytest.raises(ThawError, match="other settings"):
        Study(project, tmp_path / "s", Settings(["fe"], seeds=2))
    with pytest.raises(ThawError, match="other settings"):
        Study(proj.apply_overrides(project, ["train.epochs=3"]), tmp_path / "s", Settings(["fe"]))
    renamed = proj.apply_overrides(project, ["name=other", "train.device=cpu"])  # may differ, as for a run
    assert Study(renamed, tmp_path / "s", Settings(["fe"])).state["cells"]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ThawError, match="not an empty folder"):
        Study(project, tmp_path / "busy", Settings(["fe"]))
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(ThawError, match="random weights"):
        Study(proj.apply_overrides(project, ["model.weights=none"]), tmp_path / "t", Settings(["fe"]))


def test_recipes_are_checked_against_the_model():
    assert recipes.parse("scratch, fe,last3,full", blocks=4) == ["scratch", "fe", "last3", "full"]
    for bad, why in (("fe,fe", "twice"), ("last4", "lastN goes up to last3"), ("best", "unknown"), ("", "at least")):
        with pytest.raises(ThawError, match=why):
            recipes.parse(bad, blocks=4)
    assert recipes.default(6, None) == ["scratch", "fe", "last1", "last2", "full"]
    suggested = recipes.plan_of("last4", 6, "adamw")
    assert recipes.default(6, suggested) == ["scratch", "fe", "last1", "last2", "last3", "last4", "last5", "full"]
    assert all(recipes.name_of(recipes.plan_of(n, 6, "adamw")) == n for n in ("scratch", "fe", "last2", "full"))


def test_subsets_take_k_per_class_seeded():
    samples = [Sample(f"{c}-{i}", c) for c in range(3) for i in range(10)]
    five = subset(samples, 5, seed=0)
    assert [sum(s.label == c for s in five) for c in range(3)] == [5, 5, 5]
    assert five == subset(samples, 5, seed=0) and five != subset(samples, 5, seed=1)
    assert len(subset(samples, 50, seed=0)) == 30  # a class with fewer gives all it has


def test_the_default_folder_sits_beside_the_runs(project_factory):
    project = tiny(project_factory)
    folder = default_folder(project)
    assert folder.parent == project.resolve("runs") and folder.name.startswith("shapes-study-")
