"""The run folder: every output written, the model reloads, nothing written for a rejected run."""

from __future__ import annotations

import csv
import io
import json
import threading

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from engine import events as ev
from engine import project as proj
from engine.errors import DataError, ProjectError
from engine.model.assemble import assemble
from engine.runs import checkpoint
from engine.runs import folder as run
from engine.runs.lock import LOCK_NAME

SUMMARY_KEYS = {"best_val_accuracy", "final_val_accuracy", "epochs_completed", "stopped_early", "device",
                "trainable_params", "total_params", "images_per_second", "frozen_verified", "skipped_files"}


def test_run_writes_every_output(tmp_path, project_factory):
    p = project_factory(freeze__preset="last_blocks", data__augment="light")
    run_dir, result = run.train(p)
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.startswith("shapes-")
    # the checkpoint went when the run finished, and the lock file when it ended (engine/runs/lock.py)
    assert sorted(f.name for f in run_dir.iterdir()) == sorted(set(run.OUTPUTS) - {checkpoint.FILENAME})
    assert not (run_dir / LOCK_NAME).exists()

    rows = list(csv.DictReader(io.StringIO((run_dir / "metrics.csv").read_text())))
    assert [(r["epoch"], r["split"]) for r in rows] == [("1", "train"), ("1", "val"), ("2", "train"), ("2", "val")]
    assert list(rows[0]) == list(run.METRICS_HEADER)
    assert float(rows[3]["accuracy"]) == pytest.approx(result.history[1].val_accuracy, abs=1e-6)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["epochs_completed"] == 2 and summary["frozen_verified"] is True
    assert summary["best_val_accuracy"] == max(h.val_accuracy for h in result.history)
    assert json.loads((run_dir / "labels.json").read_text()) == ["circle", "square", "triangle"]

    saved = proj.load(run_dir / "project.thaw.toml")
    assert saved.data.train == str((tmp_path / "train").resolve())
    assert saved.train.out_dir == str((tmp_path / "runs").resolve())
    assert proj.dumps(run.resolved(p)) == proj.dumps(saved)
    assert (saved.model, saved.freeze, saved.head, saved.data.augment) == (p.model, p.freeze, p.head, "light")

    state = load_file(run_dir / "model.safetensors")
    fresh = assemble(saved, 3, "cpu").model
    assert set(state) == set(fresh.state_dict())
    fresh.load_state_dict(state)
    fresh.eval()
    result.model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x), result.model(x))


def test_skipped_files_are_in_the_summary(tmp_path, project_factory):
    p = project_factory(train__epochs=1)
    (tmp_path / "train" / "circle" / "broken.png").write_bytes(b"\x89PNG not really")
    buf = io.BytesIO()
    Image.effect_noise((48, 48), 40).convert("RGB").save(buf, "JPEG")
    cut = buf.getvalue()[: len(buf.getvalue()) // 2]  # the header is whole: it fails only when decoded
    (tmp_path / "train" / "square" / "cut.jpg").write_bytes(cut)
    logs = []
    run_dir, result = run.train(p, tmp_path / "out", callbacks=[
        lambda e: logs.append(e.text) if isinstance(e, ev.LogMessage) else None])
    skipped = {s["path"].rsplit("/", 1)[-1]: s["reason"]
               for s in json.loads((run_dir / "summary.json").read_text())["skipped_files"]}
    assert set(skipped) == {"broken.png", "cut.jpg"}
    assert "not an image" in skipped["broken.png"] or "truncated" in skipped["broken.png"]
    assert "failed to decode" in skipped["cut.jpg"]
    assert any("cut.jpg" in line for line in logs)


def test_a_stopped_run_still_saves_what_it_trained(tmp_path, project_factory):
    stop = threading.Event()

    def stop_in_epoch_2(e):
        if isinstance(e, ev.BatchEnded) and e.epoch == 2:
            stop.set()

    run_dir, result = run.train(project_factory(train__epochs=3), tmp_path / "out",
                                callbacks=[stop_in_epoch_2], stop=stop)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by_user"] is True and summary["epochs_completed"] == 1
    assert (run_dir / "model.safetensors").is_file()
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 3


def test_unwritable_output_is_reported_before_training(tmp_path, project_factory):
    p = project_factory()
    (tmp_path / "a-file").write_text("x")
    events = []
    with pytest.raises(ProjectError, match="--out: .*a-file is a file, not a folder"):
        run.train(p, tmp_path / "a-file" / "run", callbacks=[events.append])
    p.train.out_dir = "a-file"
    with pytest.raises(ProjectError, match="train.out_dir: .*a-file is a file, not a folder"):
        run.train(p, callbacks=[events.append])
    assert events == []


def test_a_folder_holding_a_run_is_not_overwritten(tmp_path, project_factory):
    p = project_factory(train__epochs=1)
    run_dir, _ = run.train(p, tmp_path / "out")
    before = (run_dir / "model.safetensors").read_bytes()
    with pytest.raises(ProjectError, match="already holds a run"):
        run.train(p, run_dir)
    assert (run_dir / "model.safetensors").read_bytes() == before
    again, _ = run.train(p)
    assert again != run_dir


def test_rejected_data_leaves_no_run_folder(tmp_path, project_factory):
    p = project_factory(per_class=1)
    with pytest.raises(DataError, match="has only 1 usable image"):
        run.train(p, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "runs").exists()
