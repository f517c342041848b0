"""One run at a time per run folder: a second resume is refused while another process trains there, and a
killed process leaves nothing locked."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine import events as ev
from engine.runs import folder as run
from engine.runs.lock import RunLock, RunLocked

ROOT = Path(__file__).resolve().parents[3]
HOLD = "import sys, time; from engine.runs.lock import RunLock; RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)"


def _holder(folder: Path) -> subprocess.Popen:
    """Another process that takes the folder's lock and keeps it until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.name != ".lock"}


def test_a_second_lock_is_refused_until_the_first_is_released(tmp_path):
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    first.acquire()
    first.acquire()  # taking a held lock again does nothing
    with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
        second.acquire()
    assert not second.held
    first.release()
    second.acquire()
    assert second.held
    second.release()


def test_resume_is_refused_while_another_process_trains_and_works_once_it_is_killed(tmp_path, project_factory):
    stop = threading.Event()

    def stop_after_epoch_1(e):
        if isinstance(e, ev.EpochEnded) and e.epoch == 1:
            stop.set()

    p = project_factory(train__epochs=2)
    folder, first = run.train(p, tmp_path / "run", callbacks=[stop_after_epoch_1], stop=stop)
    assert first.summary["epochs_completed"] == 1
    free = RunLock(folder)
    free.acquire()  # train released its lock when it returned
    free.release()

    holder = _holder(folder)
    try:
        before = _files(folder)
        with pytest.raises(RunLocked, match=f"another Thaw run \\(pid {holder.pid}\\) is training in"):
            run.resume(p, folder)
        assert _files(folder) == before  # nothing read-modified, nothing written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    _, resumed = run.resume(p, folder)  # the OS freed the killed process's lock
    assert resumed.summary["epochs_completed"] == 2


def test_a_run_in_progress_holds_its_folder(tmp_path, project_factory):
    """While `train` runs, another resume of the same folder is refused (here from a callback mid-run)."""
    p = project_factory(train__epochs=1)
    seen: list[str] = []

    def try_to_lock(e):
        if isinstance(e, ev.EpochEnded):
            try:
                RunLock(tmp_path / "run").acquire()
            except RunLocked as exc:
                seen.append(str(exc))

    run.train(p, tmp_path / "run", callbacks=[try_to_lock])
    assert seen and "is training in" in seen[0]
