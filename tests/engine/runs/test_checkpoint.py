"""Checkpoints survive crashes: killed at random moments (and inside a checkpoint write), the last checkpoint
always loads and the run resumes from it; a damaged checkpoint is a clear error; a full disk is caught early."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine import events as ev
from engine import project as proj
from engine.cli import main
from engine.errors import CheckpointError, ProjectError
from engine.runs import checkpoint
from engine.runs import folder as run

ROOT = Path(__file__).resolve().parents[3]
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def _project_file(project_factory, tmp_path: Path, epochs: int):
    p = project_factory(train__epochs=epochs)
    path = tmp_path / "p.thaw.toml"
    return proj.save(p, path), path


def _stop_after(n: int, stop: threading.Event):
    return lambda e: stop.set() if isinstance(e, ev.EpochEnded) and e.epoch == n else None


def _train_cli(path: Path, run_dir: Path, resume: bool) -> subprocess.Popen:
    where = ["--resume", str(run_dir)] if resume else ["--out", str(run_dir)]
    return subprocess.Popen([sys.executable, "main.py", "train", str(path), *where], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_training(proc: subprocess.Popen, start: str = "training ") -> None:
    """Until the run prints a line starting with `start` (by default FitStarted's: the data and model are ready)."""
    for line in proc.stdout:
        if line.startswith(start):
            return
    raise AssertionError(f"the run ended before {start!r} (exit {proc.wait()})")


@posix_only
def test_killed_at_random_moments_the_last_checkpoint_resumes(tmp_path, project_factory):
    p, path = _project_file(project_factory, tmp_path, epochs=10_000)
    run_dir = tmp_path / "run"
    rng = random.Random(8)
    epochs_seen = -1
    for kill in range(2):  # each kill costs a process start (torch import); the write is killed below too
        proc = _train_cli(path, run_dir, resume=kill > 0)
        try:
            # the first checkpoint is the one after epoch 1 (the state before it is made again from the seed)
            _wait_for_training(proc, "training " if kill else "epoch 1/")
            threading.Event().wait(rng.uniform(0.0, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            proc.kill()
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        saved = checkpoint.read(run_dir)  # loads every time
        assert saved.epoch >= epochs_seen and len(saved.history) == saved.epoch  # nothing lost or mixed
        epochs_seen = saved.epoch
        assert [name for name in os.listdir(run_dir) if not name.startswith(".")] != []
    stop = threading.Event()
    _, result = run.resume(p, run_dir, stop=stop, callbacks=[_stop_after(epochs_seen + 1, stop)])
    assert result.summary["resumed_from_epoch"] == epochs_seen
    assert not list(run_dir.glob(".*.tmp"))  # whatever write a kill interrupted was cleared away
    assert result.summary["epochs_completed"] == epochs_seen + 1
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in lines[1::2]] == list(range(1, epochs_seen + 2))


KILL_IN_WRITE = textwrap.dedent("""
    import os, signal, sys
    import safetensors.torch as st
    from engine import project
    from engine.runs import folder as run

    writes = []
    real_save = st.save

    def save_half_then_die(tensors, filename, metadata=None):
        writes.append(filename)
        data = real_save(tensors, metadata=metadata)
        with open(filename, "wb") as f:
            f.write(data[: len(data) // 2] if len(writes) == 2 else data)
            f.flush()
            os.fsync(f.fileno())
        if len(writes) == 2:  # the checkpoint after epoch 2, half written
            os.kill(os.getpid(), signal.SIGKILL)

    st.save_file = save_half_then_die
    run.train(project.load(sys.argv[1]), sys.argv[2])
""")


@posix_only
def test_killed_inside_a_checkpoint_write_the_previous_one_resumes(tmp_path, project_factory):
    p, path = _project_file(project_factory, tmp_path, epochs=3)
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", KILL_IN_WRITE, str(path), str(run_dir)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == -signal.SIGKILL, done.stderr
    (half,) = run_dir.glob(f".{checkpoint.FILENAME}.*.tmp")  # the interrupted write, never renamed
    assert half.stat().st_size > 0
    assert checkpoint.read(run_dir).epoch == 1
    _, result = run.resume(p, run_dir)
    assert result.summary["resumed_from_epoch"] == 1 and result.summary["epochs_completed"] == 3
    assert not list(run_dir.glob(".*.tmp"))
    assert not checkpoint.path_in(run_dir).exists()  # finished: nothing left to continue
    with pytest.raises(CheckpointError, match=r"finished after 3 epochs: there is nothing to continue"):
        run.resume(p, run_dir)


def _damage(kind: str, good: bytes, target: Path) -> None:
    if kind == "truncated":
        target.write_bytes(good[: len(good) // 2])
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "garbage":
        target.write_bytes(os.urandom(4096))
    elif kind == "flipped header":
        target.write_bytes(good[:8] + b"[" + good[9:])  # the JSON header no longer parses
    elif kind == "no metadata":
        save_file({"x": torch.zeros(2)}, str(target))
    elif kind == "other format":
        save_file({"x": torch.zeros(2)}, str(target), metadata={"thaw_checkpoint": json.dumps({"format": 99})})
    elif kind == "tensor missing":
        saved = checkpoint.read(target.parent)
        saved.tensors.pop(next(k for k in saved.tensors if k.startswith("optimizer/")))
        save_file(saved.tensors, str(target), metadata={"thaw_checkpoint": json.dumps(saved.meta)})


DAMAGE = ("truncated", "empty", "garbage", "flipped header", "no metadata", "other format", "tensor missing")


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, capsys, project_factory):
    p, path = _project_file(project_factory, tmp_path, epochs=2)
    stop = threading.Event()
    run_dir, _ = run.train(p, tmp_path / "run", stop=stop, callbacks=[_stop_after(1, stop)])
    target = run_dir / checkpoint.FILENAME
    good = target.read_bytes()
    for kind in DAMAGE:
        target.write_bytes(good)
        _damage(kind, good, target)
        with pytest.raises(CheckpointError, match="is damaged or not a Thaw checkpoint") as err:
            run.resume(p, run_dir)
        assert str(target) in str(err.value), kind
        assert main(["train", str(path), "--resume", str(run_dir)]) == 2
        assert "error: " in capsys.readouterr().err
    target.write_bytes(good)
    assert checkpoint.read(run_dir).epoch == 1


def test_a_checkpoint_for_another_model_is_refused(tmp_path, project_factory):
    p, _ = _project_file(project_factory, tmp_path, epochs=2)
    stop = threading.Event()
    run_dir, _ = run.train(p, tmp_path / "run", stop=stop, callbacks=[_stop_after(1, stop)])
    saved = checkpoint.read(run_dir)
    wider = p.copy()
    wider.head.kind, wider.head.hidden = "mlp", [7]
    saved.meta["project"] = proj.to_dict(run.resolved(wider))  # claims to be of the MLP-head project
    checkpoint.write(run_dir, saved)
    with pytest.raises(CheckpointError, match="does not fit this run's model"):
        run.resume(wider, run_dir)


def test_a_full_disk_is_reported_before_training(tmp_path):
    from engine.io.space import check_space

    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(ProjectError, match=r"train.out_dir: only [\d,]+ MB free on the disk of .*need about"):
        check_space(tmp_path / "runs" / "new", free + (1 << 30))
    check_space(tmp_path / "runs" / "new", 1)
    model = torch.nn.Linear(10, 10)  # 110 float32 = 440 bytes
    assert checkpoint.estimated_bytes(model, "adamw") == 440 * 9
    assert checkpoint.estimated_bytes(model, "sgd") == 440 * 7


def test_restoring_twice_gives_the_same_optimizer_state():
    """An in-memory checkpoint restored for an out-of-memory retry must not change as training goes on."""
    from engine.train.state import LoopState, capture, restore

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)

    def step():
        optimizer.zero_grad()
        model(torch.randn(8, 4)).square().sum().backward()
        optimizer.step()

    step()
    state = LoopState(model=model, optimizer=optimizer, scheduler=None, scaler=None)
    ckpt = capture(state, project={}, classes=[], micro_batch=8, load_failures={})
    saved = {k: v.clone() for k, v in ckpt.tensors.items()}
    for _ in range(2):  # restore, train on (as a retried epoch does), then restore again
        restore(ckpt, state)
        step()
    assert all(torch.equal(ckpt.tensors[k], v) for k, v in saved.items())
    restore(ckpt, state)
    again = capture(state, project={}, classes=[], micro_batch=8, load_failures={})
    optimizer_keys = [k for k in saved if k.startswith("optimizer/")]
    assert optimizer_keys and all(torch.equal(again.tensors[k], saved[k]) for k in optimizer_keys)
