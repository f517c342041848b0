"""`python main.py train --nproc-per-node 2` for real: torchrun, two gloo workers on the CPU (slow: each run
starts three Python processes that import torch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.test_cli import ROOT, project_file

pytestmark = pytest.mark.slow
FILES = ["activity.csv", "evaluation.json", "events.jsonl", "labels.json", "metrics.csv", "model.safetensors",
         "predictions.csv", "project.thaw.toml", "summary.json"]


def _train(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "main.py", "train", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_epochs(run: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        events = run / "events.jsonl"
        if events.exists() and events.read_text().count('"epoch_ended"') >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"no epoch {n} in {run}: {proc.poll()} {proc.stderr.read() if proc.poll() else ''}")


def _workers(launcher: int) -> list[int]:
    """The launcher's child processes: torchrun's workers, rank order."""
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == launcher:
                kids.append(int(d))
    return sorted(kids)


def test_two_processes_write_one_run_folder(tmp_path):
    run = tmp_path / "run"
    proc = _train(str(project_file(tmp_path)), "--out", str(run), "--nproc-per-node", "2")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert sorted(p.name for p in run.iterdir() if p.name != ".lock") == FILES
    assert out.count("epoch 2/2") == 1 and out.count("run saved in") == 1  # rank 0 alone speaks
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs_completed"] == 2
    assert len((run / "metrics.csv").read_text().splitlines()) == 5


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun's workers are stopped by POSIX signals")
def test_ctrl_c_stops_every_rank_and_resume_continues_under_torchrun(tmp_path):
    run, project = tmp_path / "run", project_file(tmp_path)
    proc = _train(str(project), "--out", str(run), "--nproc-per-node", "2", "--set", "train.epochs=40")
    _wait_for_epochs(run, 1, proc)
    proc.send_signal(signal.SIGINT)  # as Ctrl-C in a terminal: to torchrun's agent, which passes it on
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "stopping after this batch" in err and "run saved in" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_by_user"] and (run / "checkpoint.safetensors").is_file()
    done = summary["epochs_completed"]
    proc = _train(str(run / "project.thaw.toml"), "--resume", str(run), "--nproc-per-node", "2")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == done and summary["epochs_completed"] == 40
    assert not (run / "checkpoint.safetensors").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="the test kills a worker with SIGKILL")
def test_a_killed_worker_ends_the_run_with_one_message_and_one_process_continues_it(tmp_path):
    run, project = tmp_path / "run", project_file(tmp_path)
    proc = _train(str(project), "--out", str(run), "--nproc-per-node", "2", "--set", "train.epochs=40")
    _wait_for_epochs(run, 1, proc)
    os.kill(_workers(proc.pid)[-1], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: rank 1 was ended by SIGKILL"), err
    assert f"--resume {run}" in err and not (run / "summary.json").exists()
    proc = _train(str(run / "project.thaw.toml"), "--resume", str(run))  # one process this time
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["epochs_completed"] == 40 and summary["resumed_from_epoch"] >= 1
