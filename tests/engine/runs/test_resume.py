"""Resuming a run: 2 epochs + resume 2 gives bit-identical weights to 4 in one go; the CLI's --resume."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine import events as ev
from engine.cli import main
from engine.errors import CheckpointError, ProjectError
from engine.runs import checkpoint
from engine.runs import folder as run


def _stop_after_epoch(n: int, stop: threading.Event):
    def callback(e):
        if isinstance(e, ev.EpochEnded) and e.epoch == n:
            stop.set()
    return callback


def _last_weights(run_dir):
    return {k[len("model/"):]: v for k, v in load_file(run_dir / checkpoint.FILENAME).items()
            if k.startswith("model/")}


class _LastWeights:
    """Reads the run's last checkpoint when the loop ends, before a finished run removes it."""

    def __init__(self):
        self.weights: dict | None = None

    def __call__(self, e):
        if isinstance(e, ev.FitEnded):
            self.weights = _last_weights(Path(e.run_dir))


def _same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("settings", [
    # augmentation and a dropout head use the random generators; cosine schedule and AdamW carry state
    {"data__augment": "light", "head__kind": "mlp", "head__hidden": [16], "head__dropout": 0.3},
    # SGD with momentum, one-cycle schedule, early-stop counters, class weights, a cosine head (its scale)
    {"train__optimizer": "sgd", "train__scheduler": "onecycle", "train__early_stop_patience": 3,
     "train__class_weights": True, "train__label_smoothing": 0.1, "head__kind": "cosine"},
])
def test_two_plus_two_epochs_equal_four(tmp_path, settings, project_factory):
    p = project_factory(train__epochs=4, **settings)
    straight_last, parted_last = _LastWeights(), _LastWeights()
    straight, whole = run.train(p, tmp_path / "straight", callbacks=[straight_last])

    stop = threading.Event()
    parted, first = run.train(p, tmp_path / "parted", callbacks=[_stop_after_epoch(2, stop)], stop=stop)
    assert first.summary["epochs_completed"] == 2 and first.stopped_by_user
    assert checkpoint.read(parted).epoch == 2
    torch.manual_seed(12345)  # whatever happened in this process meanwhile does not matter
    _, resumed = run.resume(p, parted, callbacks=[parted_last])

    assert resumed.summary["epochs_completed"] == 4 and resumed.summary["resumed_from_epoch"] == 2
    assert _same(straight_last.weights, parted_last.weights)
    assert not (straight / checkpoint.FILENAME).exists() and not (parted / checkpoint.FILENAME).exists()
    assert _same(load_file(straight / "model.safetensors"), load_file(parted / "model.safetensors"))
    assert [(e.train_loss, e.val_loss, e.val_accuracy, e.lr) for e in whole.history] == \
        [(e.train_loss, e.val_loss, e.val_accuracy, e.lr) for e in resumed.history]
    rows = list(csv.DictReader(io.StringIO((parted / "metrics.csv").read_text())))
    assert [r["epoch"] for r in rows] == ["1", "1", "2", "2", "3", "3", "4", "4"]
    assert (parted / "metrics.csv").read_text().splitlines()[1:] != []
    summary = json.loads((parted / "summary.json").read_text())
    assert summary["best_val_accuracy"] == whole.summary["best_val_accuracy"]


def test_cli_resume_continues_a_stopped_run(tmp_path, capsys, project_factory):
    p = project_factory(train__epochs=2)
    path = tmp_path / "p.thaw.toml"
    from engine import project as proj

    proj.save(p, path)
    stop = threading.Event()
    run_dir, _ = run.train(p, tmp_path / "r", callbacks=[_stop_after_epoch(1, stop)], stop=stop)
    assert main(["train", str(path), "--resume", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "resuming after epoch 1 of 2" in out and "epoch 2/2" in out and "epoch 1/2" not in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs_completed"] == 2 and summary["resumed_from_epoch"] == 1
    # finished: nothing left to continue, and resuming says so
    assert main(["train", str(path), "--resume", str(run_dir)]) == 2
    assert "finished after 2 epochs: there is nothing to continue" in capsys.readouterr().err
    # the run's own project file resumes a run as well (absolute paths, from anywhere)
    stop.clear()
    other, _ = run.train(p, tmp_path / "r2", callbacks=[_stop_after_epoch(1, stop)], stop=stop)
    assert main(["train", str(other / "project.thaw.toml"), "--resume", str(other)]) == 0


def test_resume_refuses_other_settings_and_missing_checkpoints(tmp_path, capsys, project_factory):
    p = project_factory(train__epochs=2)
    stop = threading.Event()
    run_dir, _ = run.train(p, tmp_path / "r", callbacks=[_stop_after_epoch(1, stop)], stop=stop)
    before = (run_dir / checkpoint.FILENAME).read_bytes()
    other = p.copy()
    other.train.lr = 0.5
    with pytest.raises(ProjectError, match=r"train.lr = 0.5 \(the run had 0.01\)"):
        run.resume(other, run_dir)
    moved = p.copy()
    moved.train.device = "cpu"  # where it runs may change
    assert checkpoint.differences(checkpoint.read(run_dir).meta["project"],
                                  __import__("engine.project", fromlist=["to_dict"]).to_dict(run.resolved(moved))) == []
    assert (run_dir / checkpoint.FILENAME).read_bytes() == before
    with pytest.raises(CheckpointError, match="no checkpoint.safetensors"):
        run.resume(p, tmp_path)
    with pytest.raises(CheckpointError, match="not a run folder"):
        run.resume(p, tmp_path / "nowhere")
    # a new run refuses a folder that holds one, and says how to continue it
    with pytest.raises(ProjectError, match="--resume"):
        run.train(p, run_dir)
