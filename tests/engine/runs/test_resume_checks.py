"""What a resume and a stopped run may not do: continue on other classes or another split, trust hand-edited
checkpoint metadata, or leave untrained weights looking like a result."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from safetensors.torch import save_file

from engine import events as ev
from engine import project as proj
from engine.cli import main
from engine.errors import CheckpointError, DataError
from engine.runs import checkpoint
from engine.runs import folder as run
from tests.imagesets import make_image_folder


def _stopped_after_epoch_1(p, out):
    stop = threading.Event()
    return run.train(p, out, stop=stop, callbacks=[
        lambda e: stop.set() if isinstance(e, ev.EpochEnded) and e.epoch == 1 else None])[0]


def test_resume_refuses_other_classes_with_both_lists(tmp_path, project_factory, capsys):
    """Before: after a class folder was renamed the resume went on, output 0 meaning another class; with a class
    added it failed as "does not fit this architecture"."""
    p = project_factory(train__epochs=3)
    run_dir = _stopped_after_epoch_1(p, tmp_path / "run")
    before = (run_dir / checkpoint.FILENAME).read_bytes()
    train = tmp_path / "train"
    (train / "circle").rename(train / "ring")
    with pytest.raises(DataError, match=r"the data now has classes \['ring', 'square', 'triangle'\]; the run had "
                                        r"\['circle', 'square', 'triangle'\]"):
        run.resume(p, run_dir)
    (train / "ring").rename(train / "circle")
    make_image_folder(train, per_class=8, classes=("star",), seed=3)
    path = run_dir / "project.thaw.toml"
    assert main(["train", str(path), "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "'star'" in err and "the run had ['circle', 'square', 'triangle']" in err and "does not fit" not in err
    assert (run_dir / checkpoint.FILENAME).read_bytes() == before
    shutil.rmtree(train / "star")
    _, result = run.resume(p, run_dir)
    assert result.summary["epochs_completed"] == 3


def test_resume_keeps_the_runs_split_when_images_come_and_go(tmp_path, project_factory):
    """Before: images added or removed since the run started made a new split on resume (validation images of
    the first epoch could train in the next), without a word."""
    p = project_factory(train__epochs=2)
    seen = []
    stop = threading.Event()

    def record(e):
        if isinstance(e, ev.FitStarted):
            seen.append((e.train_size, e.val_size))
        if isinstance(e, ev.EpochEnded):
            stop.set()

    run_dir = run.train(p, tmp_path / "run", stop=stop, callbacks=[record])[0]
    split = checkpoint.read(run_dir).meta["split"]
    gone = split["val"][0][0]
    (tmp_path / "train" / "circle" / gone.rsplit("/", 1)[-1]).unlink()
    make_image_folder(tmp_path / "new", per_class=3, seed=5)
    for cls in ("circle", "square"):
        for f in (tmp_path / "new" / cls).iterdir():
            f.rename(tmp_path / "train" / cls / f"new-{f.name}")
    logs, resumed = [], []

    def watch(e):
        if isinstance(e, ev.LogMessage):
            logs.append(e.text)
        if isinstance(e, ev.FitStarted):
            resumed.append((e.train_size, e.val_size))

    _, result = run.resume(p, run_dir, callbacks=[watch])
    assert resumed == [(seen[0][0], seen[0][1] - 1)]  # the run's own split, less the image that went
    assert [s.path for s in result.data.train.samples] == [q for q, _ in split["train"]]
    assert [s.path for s in result.data.val.samples] == [q for q, _ in split["val"][1:]]
    assert any("1 of its images are gone" in t and "6 image(s) were added and are not used" in t for t in logs)


@pytest.mark.parametrize("edit, problem", [
    (lambda m: m.update(epoch=99), "epoch = 99, not a number of completed epochs between 0 and the run's 3"),
    (lambda m: m.update(epoch=-3), "epoch = -3"),
    (lambda m: m.update(epoch="1"), "epoch = '1'"),
    (lambda m: m.pop("history"), "history does not list"),
    (lambda m: m["history"].append(m["history"][0]), "history does not list"),
    (lambda m: m.pop("classes"), "classes is not a list"),
    (lambda m: m.pop("optimizer"), "optimizer is missing"),
    (lambda m: m.pop("rng"), "rng is missing"),
    (lambda m: m.update(best_epoch=5), "best_epoch is missing or not what a run writes"),
    (lambda m: m.update(micro_batch=0), "micro_batch"),
    (lambda m: m.pop("project"), "its project is not valid"),
    (lambda m: m["project"]["train"].update(epochs=0), "its project is not valid (train.epochs"),
    (lambda m: m["split"]["train"][0].__setitem__(1, 7), "split is missing or not what a run writes"),
])
def test_hand_edited_checkpoint_metadata_is_refused_as_damaged(tmp_path, project_factory, capsys, edit, problem):
    """Before: a missing key gave an exit-1 traceback (KeyError), `epoch = 99` was accepted."""
    p = project_factory(train__epochs=3)
    run_dir = _stopped_after_epoch_1(p, tmp_path / "run")
    saved = checkpoint.read(run_dir)
    edit(saved.meta)
    save_file(saved.tensors, str(run_dir / checkpoint.FILENAME), metadata={"thaw_checkpoint": json.dumps(saved.meta)})
    with pytest.raises(CheckpointError, match="is damaged or not a Thaw checkpoint") as info:
        run.resume(p, run_dir)
    assert problem in str(info.value)
    assert main(["train", str(run_dir / "project.thaw.toml"), "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_a_run_stopped_before_its_first_epoch_writes_no_model_and_no_checkpoint(tmp_path, project_factory):
    """Before: such a run wrote a model.safetensors of untrained weights and a checkpoint of the state before
    epoch 1 (for vit_h_14, 2.5 GB of each)."""
    p = project_factory(train__epochs=2)
    stop, during, logs = threading.Event(), [], []

    def stop_in_epoch_1(e):
        if isinstance(e, ev.BatchEnded):
            during.append(sorted(f.name for f in (tmp_path / "run").iterdir()))
            stop.set()
        if isinstance(e, ev.LogMessage):
            logs.append(e.text)

    run_dir, result = run.train(p, tmp_path / "run", stop=stop, callbacks=[stop_in_epoch_1])
    assert during == [[".lock", "events.jsonl", "labels.json", "metrics.csv", "project.thaw.toml"]]  # no checkpoint
    assert sorted(f.name for f in run_dir.iterdir()) == ["activity.csv", "events.jsonl", "labels.json", "metrics.csv",
                                                         "project.thaw.toml", "summary.json"]
    assert json.loads((run_dir / "summary.json").read_text())["epochs_completed"] == 0
    assert any("no model was saved" in t for t in logs)
    with pytest.raises(CheckpointError, match="Start the run again"):
        run.resume(p, run_dir)
    assert proj.load(run_dir / "project.thaw.toml").train.epochs == 2
    # started again in the same folder: what the untrained run left is Thaw's, and is made anew
    again, result = run.train(p, run_dir)
    assert again == run_dir and result.summary["epochs_completed"] == 2
    events = [json.loads(line)["event"] for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events.count("fit_started") == 1
