"""Failures that end cleanly: file names that are not UTF-8 in every output, Ctrl-C while starting, and a
model too large for this machine refused before anything is allocated."""

from __future__ import annotations

import csv
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
from PIL import Image

from engine import project as proj
from engine.cli import main
from engine.device import ram_bytes
from engine.model.assemble import skeleton
from engine.preflight import blocking, preflight

ROOT = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names and signals")


@posix_only
def test_file_names_that_are_not_utf8_are_written_safely_everywhere(tmp_path, project_factory, monkeypatch):
    """Before: the run trained, then died writing predictions.csv ("surrogates not allowed", exit 1)."""
    p = project_factory(per_class=6, train__epochs=1)
    train = tmp_path / "train"
    odd_class = os.fsdecode(b"cl\xe4ss")  # Latin-1 bytes: a class folder from another system
    shutil.copytree(train / "square", train / odd_class)
    shutil.copy(train / "circle" / "000.png", train / "circle" / os.fsdecode(b"\xff\xfe-odd.png"))
    buf = io.BytesIO()
    Image.effect_noise((48, 48), 40).convert("RGB").save(buf, "JPEG")
    cut = train / odd_class / os.fsdecode(b"cut-\xe9.jpg")  # scans, fails to decode: the run logs its name
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    path = tmp_path / "p.thaw.toml"
    proj.save(p, path)
    out = tmp_path / "out"
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")  # a terminal that is strict UTF-8
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["train", str(path), "--out", str(out)]) == 0
    stdout.flush()
    printed = stdout.buffer.getvalue().decode("ascii", "replace")
    assert "cut-\\xe9.jpg: failed to decode" in printed and "run saved in" in printed
    labels = json.loads((out / "labels.json").read_text(encoding="ascii"))  # escaped: valid JSON, plain ASCII
    assert odd_class in labels
    summary = json.loads((out / "summary.json").read_text(encoding="ascii"))
    assert str(cut) in {s["path"] for s in summary["skipped_files"]}
    json.loads((out / "evaluation.json").read_text(encoding="ascii"))
    raw = (out / "predictions.csv").read_bytes()  # the names as the bytes they have on the disk
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8", "surrogateescape"))))
    assert any(b"cl\xe4ss" in os.fsencode(r["path"]) for r in rows)
    assert all(Path(r["path"]).is_file() for r in rows)
    # a project setting that is not UTF-8 cannot be saved as TOML: refused, naming the key
    monkeypatch.undo()
    assert main(["train", str(path), "--set", f"data.train={train / odd_class}"]) == 2


def test_a_non_utf8_name_is_shown_as_its_bytes_in_the_window_log(qtbot):
    from gui.log_panel import LogPanel

    log = LogPanel()
    qtbot.addWidget(log)
    name = os.fsdecode(b"caf\xe9.png")
    log.write(f"skipped {name}: failed to decode", "warning")
    assert "caf\\xe9.png" in log.toPlainText() and "caf\\xe9.png" in log.lines[-1]


def _importing_torch(pid: int) -> bool:
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches /proc for torch's libraries")
def test_ctrl_c_while_starting_is_one_line_and_exit_130(tmp_path, project_factory):
    """Before: Ctrl-C in the first seconds (importing torch) printed a 40-line KeyboardInterrupt traceback. Sent
    once torch's libraries are being loaded, and 0.5 s later."""
    path = tmp_path / "p.thaw.toml"
    proj.save(project_factory(train__epochs=10_000), path)
    for delay in (0.0, 0.5):
        proc = subprocess.Popen([sys.executable, "main.py", "train", str(path)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not _importing_torch(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
    assert not list(tmp_path.glob("runs/*/model.safetensors"))  # nothing trained, nothing saved as if it were


def test_a_head_too_large_for_this_machine_is_refused_naming_the_setting(tmp_path, project_factory, capsys):
    """Before: a head of [65536, 65536] failed as "training failed: RuntimeError ... can't allocate" (exit 1);
    the window's checklist allocated its 17 GB just to show it."""
    p = project_factory(head__kind="mlp", head__hidden=[65536, 65536])
    started = time.perf_counter()
    built = skeleton(p, 3)
    assert all(t.is_meta for t in built.model.parameters()) and time.perf_counter() - started < 30
    found = blocking(preflight(p))
    assert [e.key for e in found] == ["head.hidden"]
    assert ram_bytes() < 100 * 2**30  # the head needs about 113 GiB: more than this machine has
    assert "GiB of RAM" in str(found[0]) and "[65536, 65536] hold 4,3" in str(found[0])
    path = tmp_path / "p.thaw.toml"
    proj.save(p, path)
    assert main(["train", str(path)]) == 2
    assert capsys.readouterr().err.startswith("error: head.hidden: training this model needs at least")
    assert not (tmp_path / "runs").exists()
    p.head.hidden = [256]
    assert blocking(preflight(p)) == []
