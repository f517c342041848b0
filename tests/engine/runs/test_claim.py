"""The person's files and other runs are never overwritten: a run folder is new or empty, taken at once (made
exclusively and locked before the scan), never inside the data; names stay unique and short enough."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import events as ev
from engine import project as proj
from engine.cli import main
from engine.data import scan
from engine.errors import ProjectError
from engine.io.ownership import LOCK_NAME
from engine.preflight import preflight
from engine.runs import folder as run
from engine.runs.claim import claim
from engine.runs.lock import RunLocked
from tests.imagesets import make_image_folder

ROOT = Path(__file__).resolve().parents[3]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` by relative path, with its content's hash and mode."""
    return {str(p.relative_to(folder)): f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_mode:o}"
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_at_the_project_folder_or_among_other_files_is_refused(tmp_path, project_factory, capsys):
    """Before: --out at the project's folder rewrote the person's project.thaw.toml, and labels.json and
    metrics.csv of an existing folder were overwritten without a word."""
    p = project_factory(train__epochs=1)
    path = tmp_path / "project.thaw.toml"
    path.write_text("# my comments\n" + proj.dumps(p))
    theirs = tmp_path / "results"
    theirs.mkdir()
    (theirs / "labels.json").write_text('["mine"]\n')
    (theirs / "metrics.csv").write_text("my,own\n")
    before = snapshot(tmp_path)
    for out in (tmp_path, theirs):
        assert main(["train", str(path), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--out: {out} is not empty" in err and "not a Thaw run folder" in err
    assert snapshot(tmp_path) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", str(path), "--out", str(empty)]) == 0
    assert (empty / "model.safetensors").is_file() and not (empty / LOCK_NAME).exists()
    mask = os.umask(0)
    os.umask(mask)
    assert {stat.S_IMODE(f.stat().st_mode) for f in empty.iterdir()} == {0o666 & ~mask}  # not mkstemp's 0600


def test_the_data_folder_is_never_written_and_thaws_folders_are_not_classes(tmp_path, capsys):
    """Before: a project saved in its data folder wrote `runs` into it, and the next run took `runs` for a
    class without images and refused to start."""
    data = make_image_folder(tmp_path / "data", per_class=6)
    p = proj.Project(name="inside", base_dir=data)
    for key, value in {"model.arch": "thaw_digits_cnn", "model.weights": "none", "data.train": ".",
                       "data.image_size": 32, "data.augment": "none", "freeze.preset": "full", "train.epochs": 1}.items():
        p.set(key, value)
    path = data / "p.thaw.toml"
    proj.save(p, path)
    before = snapshot(data)
    found = {e.key: str(e) for e in preflight(p)}
    assert "is inside the training data" in found["train.out_dir"] and str(tmp_path / "runs") in found["train.out_dir"]
    assert main(["train", str(path)]) == 2
    assert "train.out_dir:" in capsys.readouterr().err
    assert main(["train", str(path), "--out", str(data / "circle" / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out:") and "is inside the training data" in err
    assert snapshot(data) == before
    # runs already there from an older Thaw, a tagged cache and __pycache__: none of them is a class
    assert main(["train", str(path), "--set", f"train.out_dir={tmp_path / 'runs'}"]) == 0
    old = tmp_path / "runs"
    (data / "runs").mkdir()
    for d in old.iterdir():
        d.rename(data / "runs" / d.name)
    (data / "cache").mkdir()
    (data / "cache" / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    (data / "__pycache__").mkdir()
    (data / "run-here").mkdir()
    (data / "run-here" / LOCK_NAME).write_text("")
    assert scan(data).classes == ["circle", "square", "triangle"]


def test_a_folder_in_use_or_filled_meanwhile_is_refused_at_once(tmp_path, project_factory):
    """Before: a run into --out X that finished while another run into X was still setting up was overwritten
    by it (both said "run saved"). Here the first run is held inside its set-up (at the warning its scan gives
    for an empty class) while a second run into X is started."""
    p = project_factory(train__epochs=1)
    (tmp_path / "train" / "empty").mkdir()
    out = tmp_path / "X"
    in_setup, go_on, results = threading.Event(), threading.Event(), []

    def hold(e):
        if isinstance(e, ev.LogMessage) and not in_setup.is_set():
            in_setup.set()
            go_on.wait(30)

    first = threading.Thread(target=lambda: results.append(run.train(p, out, callbacks=[hold])))
    first.start()
    try:
        assert in_setup.wait(30)
        events = []
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            run.train(p, out, callbacks=[events.append])
        assert events == []  # refused at once: nothing scanned, nothing started
    finally:
        go_on.set()
        first.join(60)
    assert results and results[0][0] == out
    before = snapshot(out)
    with pytest.raises(ProjectError, match="already holds a run"):
        run.train(p, out)
    assert snapshot(out) == before


def test_default_names_are_unique_in_one_second_and_short_enough(tmp_path, project_factory):
    """Before: runs started in the same second picked the same folder (one then failed as "locked"), and a
    300-character project name failed with "File name too long"."""
    p = project_factory()
    taken = [claim(p) for _ in range(5)]
    try:
        names = [t.folder.name for t in taken]
        assert len(set(names)) == 5 and all(t.folder.is_dir() and t.lock.held for t in taken)
    finally:
        for t in reversed(taken):
            t.release()
    assert not (tmp_path / "runs").exists()  # released with nothing written: the folders they made went again
    for name in ("x" * 300, "é" * 300, "a/b\\c:d*?" * 40):
        p.name = name
        p.train.epochs = 1
        run_dir, _ = run.train(p)
        assert len(run_dir.name.encode()) <= 128
        assert proj.load(run_dir / "project.thaw.toml").name == name
        assert json.loads((run_dir / "summary.json").read_text())["epochs_completed"] == 1


CLAIM_AT = """
import os, sys, time
from engine import project as proj
from engine.runs.claim import claim
p = proj.load(sys.argv[1])
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
taken = claim(p)
(taken.folder / "mine").write_text(str(os.getpid()))
time.sleep(0.5)
taken.release()
"""


def test_processes_claiming_in_the_same_instant_each_get_their_own_folder(tmp_path, project_factory):
    """Four real processes take a default run folder of one project at the same moment (a shared start time,
    the start of a second): each gets its own, none is refused."""
    path = tmp_path / "p.thaw.toml"
    proj.save(project_factory(), path)
    at = str(int(time.time()) + 3)
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM_AT, str(path), at], cwd=ROOT, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    errors = [proc.communicate(timeout=60)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, errors
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 4 and len({(f / "mine").read_text() for f in folders}) == 4


@pytest.mark.slow
def test_a_parallel_sweep_of_one_project_simply_works(tmp_path, project_factory):
    """Before: 1-2 of 4 parallel `main.py train p.thaw.toml --set train.lr=...` failed with "another Thaw run
    is training". Four real processes started together, each into its own new folder (~20 s on 2 idle cores:
    four torch imports; the claim itself is tested in CI by the test above)."""
    path = tmp_path / "p.thaw.toml"
    proj.save(project_factory(train__epochs=1, train__batch_size=16), path)
    lrs = ("0.1", "0.03", "0.01", "0.003")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "main.py", "train", str(path), "--set", f"train.lr={lr}"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for lr in lrs]
    outs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, [err for _, err in outs]
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 4
    assert sorted(str(proj.load(f / "project.thaw.toml").train.lr) for f in folders) == sorted(lrs)
    assert not any((f / LOCK_NAME).exists() for f in folders)


def test_a_folder_handed_to_other_processes_is_reserved_at_once(project_factory, tmp_path):
    """Run in Several Processes names the folder its processes' rank 0 will take: two windows starting in the
    same second got the same name, and the second run was refused. Reserved (made, empty), the second gets -2,
    and rank 0 takes the empty folder it was given."""
    p = project_factory(train__epochs=1, train__out_dir=str(tmp_path / "runs"))
    now = time.time()
    first, second = run.reserve_run_dir(p, now), run.reserve_run_dir(p, now)
    assert first != second and second.name == first.name + "-2"
    assert first.is_dir() and not any(first.iterdir()) and second.is_dir()
    run_dir, _ = run.train(p, first)
    assert run_dir == first and (first / "model.safetensors").is_file()
