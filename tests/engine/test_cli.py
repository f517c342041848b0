"""`python main.py train`: outputs, progress, and the exit status for each way a run can end."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import events as ev
from engine.cli import _Progress, main
from tests.imagesets import make_image_folder

ROOT = Path(__file__).resolve().parents[2]

PROJECT = """name = "shapes"
[model]
arch = "thaw_digits_cnn"
weights = "none"
[data]
train = "train"
image_size = 32
augment = "none"
val_fraction = 0.25
[freeze]
preset = "full"
[train]
epochs = 2
batch_size = 8
lr = 0.01
"""


def project_file(tmp_path: Path, text: str = PROJECT, images: bool = True) -> Path:
    if images:
        make_image_folder(tmp_path / "train", per_class=8)
    path = tmp_path / "p.thaw.toml"
    path.write_text(text)
    return path


def test_train_writes_a_run_and_shows_progress(tmp_path, capsys):
    path = project_file(tmp_path)
    out = tmp_path / "out"
    assert main(["train", str(path), "--out", str(out), "--set", "train.epochs=1"]) == 0
    stdout = capsys.readouterr().out
    assert "epoch 1/1" in stdout and "img/s" in stdout and "ETA" in stdout
    assert f"run saved in {out}" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_completed"] == 1
    assert (out / "model.safetensors").is_file() and (out / "metrics.csv").is_file()


def test_default_run_folder_is_under_out_dir(tmp_path, capsys):
    path = project_file(tmp_path, PROJECT.replace("epochs = 2", "epochs = 1"))
    assert main(["train", str(path)]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("shapes-") and (run_dir / "summary.json").is_file()


def _no_images(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "b").mkdir()


def _empty_class(tmp_path):
    """One class with images beside an empty one: too few classes to learn (two good ones would train)."""
    make_image_folder(tmp_path / "train", per_class=4, classes=("a",))
    (tmp_path / "train" / "c").mkdir()


def _single_class(tmp_path):
    make_image_folder(tmp_path / "train", per_class=4, classes=("a",))


def _too_few(tmp_path):
    make_image_folder(tmp_path / "train", per_class=4, classes=("a",))
    make_image_folder(tmp_path / "train", per_class=1, classes=("b",))


@pytest.mark.parametrize("setup, extra, message", [
    (_no_images, [], "no usable images"),
    (_empty_class, [], "only one class with usable images ('a')"),
    (_single_class, [], "only one class"),
    (_too_few, [], "class 'b' has only 1 usable image"),
    (None, ["--set", "train.lr=-1"], "train.lr: must be > 0.0"),
    (None, ["--set", "train.bogus=1"], "train.bogus: unknown key"),
    (None, ["--set", "data.train=elsewhere"], "data.train"),
    (None, ["--set", "train.device=mps"] if sys.platform != "darwin" else ["--set", "train.epochs=0"],
     "train.device" if sys.platform != "darwin" else "train.epochs"),
    (None, ["--out", "{tmp}/p.thaw.toml/run"], "p.thaw.toml is a file, not a folder"),
    (None, ["--resume", "{tmp}/somewhere"], "--resume continues a run in its own folder; leave out --out"),
])
def test_bad_input_exits_2_before_training(tmp_path, capsys, setup, extra, message):
    if setup is not None:
        setup(tmp_path)
    path = project_file(tmp_path, images=setup is None)
    out = [] if "--out" in extra else ["--out", str(tmp_path / "out")]
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert main(["train", str(path), *out, *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "epoch" not in captured.out
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_invalid_project_file_names_the_key(tmp_path, capsys):
    path = project_file(tmp_path, PROJECT.replace('augment = "none"', 'augment = "heavy"'))
    assert main(["train", str(path)]) == 2
    assert "data.augment: must be one of" in capsys.readouterr().err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_updating_line_on_a_tty():
    stream = _Tty()
    show = _Progress(stream)
    for step in (1, 2, 3):
        show(ev.BatchEnded(epoch=1, step=step, steps_per_epoch=3, global_step=step, loss=0.5, accuracy=0.75,
                           lr=1e-3, images_per_second=120.0, eta_seconds=75.0))
    show(ev.EpochEnded(epoch=1, epochs=2, train_loss=0.5, train_accuracy=0.75, val_loss=0.6, val_accuracy=0.7,
                       lr=1e-3, seconds=3.0, images_per_second=120.0, eta_seconds=3.0, best_val_accuracy=0.7,
                       is_best=True))
    text = stream.getvalue()
    assert text.count("\n") == 1  # the batch line is rewritten in place, the epoch line stays
    assert "\repoch 1  step 1/3  loss 0.5000  acc 0.750  120 img/s  ETA 1:15" in text
    assert "step 3/3" in text
    assert text.rstrip("\n").endswith("epoch 1/2  loss 0.5000  acc 0.750  val_loss 0.6000  val_acc 0.700  "
                                      "120 img/s  ETA 0:03  *best*")
    plain = io.StringIO()
    _Progress(plain)(ev.BatchEnded(1, 1, 3, 1, 0.5, 0.75, 1e-3, 120.0, 75.0))
    assert plain.getvalue() == ""  # not a terminal: a line per epoch only


def _start(tmp_path: Path, epochs: int) -> tuple[subprocess.Popen, Path]:
    path = project_file(tmp_path, PROJECT.replace("epochs = 2", f"epochs = {epochs}"))
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "main.py", "train", str(path), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc, out


def _wait_for(proc: subprocess.Popen, text: str) -> None:
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        if text in line:
            return
        assert time.monotonic() < deadline, f"no {text!r} in the output"
    raise AssertionError(f"the run ended before printing {text!r}: {proc.stderr.read()}")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_saves_what_was_trained_and_exits_130(tmp_path):
    proc, out = _start(tmp_path, epochs=10_000)
    try:
        _wait_for(proc, "epoch 1/")
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "stopping before the next layer" in err and "run saved in" in rest
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_by_user"] is True and summary["epochs_completed"] >= 1
    assert (out / "model.safetensors").stat().st_size > 0


def test_a_failure_during_training_exits_1(tmp_path):
    proc, out = _start(tmp_path, epochs=10_000)
    try:
        _wait_for(proc, "epoch 1/")
        shutil.rmtree(out)
        out.write_text("the run folder is gone")  # the next metrics.csv cannot be written
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "error: training failed" in err


def test_the_documented_schema_matches_the_project():
    import dataclasses
    import re

    from engine import project as proj

    doc = (ROOT / "docs" / "project-file.md").read_text()
    example = proj.loads(re.search(r"```toml\n(.*?)```", doc, re.S).group(1))
    assert example.name == "digits-5-to-9" and example.data.train == "data/train"
    documented = set(re.findall(r"^\| `(\w+)` \|", doc, re.M))
    for section, cls in proj.SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f.name in documented, f"{section}.{f.name} is not in docs/project-file.md"
