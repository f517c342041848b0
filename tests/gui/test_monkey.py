"""A GUI that survives a careless hand: thousands of seeded random but legal actions on the real window
(tests/gui/monkey.py), with short real runs in between. Throughout: no exception reaches Qt, the window stays
open and its event loop keeps answering, threads do not pile up; at the end no thread is left running and the
project, saved, loads back the same. A failure names the seed and the last actions, so it can be replayed."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from engine import project as projects
from gui import tasks
from tests.gui.monkey import Monkey
from tests.imagesets import make_image_folder, shapes_project

RUN_MS = 180_000


def _places(tmp_path: Path) -> dict[str, Path]:
    """What a person has lying around: image folders, a CSV list with its own header, a project, a broken
    project file, a lone image, and folders to save into."""
    data = tmp_path / "data"
    train = make_image_folder(data / "train", per_class=8)
    val = make_image_folder(data / "val", per_class=3, seed=7)
    with open(data / "list.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "category"])
        w.writerows([f"train/{p.parent.name}/{p.name}", p.parent.name] for p in sorted(train.glob("*/*.png")))
    (data / "one.png").write_bytes((train / "circle" / "000.png").read_bytes())
    folder = tmp_path / "project"
    folder.mkdir()
    p = shapes_project(tmp_path, train__device="cpu")
    projects.save(p, folder / "base.thaw.toml")
    (tmp_path / "kept").mkdir()  # the short runs' own copy: the monkey may save its edits over base.thaw.toml
    projects.save(p, tmp_path / "kept" / "base.thaw.toml")
    (folder / "broken.thaw.toml").write_text("name = \n[[[")
    (tmp_path / "saves").mkdir()
    return {"train": train, "val": val, "csv": data / "list.csv", "png": data / "one.png", "project":
            folder / "base.thaw.toml", "bad_project": folder / "broken.thaw.toml", "missing": tmp_path / "nowhere",
            "out": tmp_path / "out", "saves": tmp_path / "saves",
            "kept": tmp_path / "kept" / "base.thaw.toml"}


def _short_run(window, qtbot, place) -> None:
    """The base project opened and trained to its end (2 epochs), as a person would between the clicks."""
    window.stop_and_join()
    copy = place["saves"] / "short-run.thaw.toml"  # opened as a copy: the monkey may save its edits over it
    shutil.copyfile(place["kept"], copy)
    assert window.open_path(copy, ask=False)

    def can_start() -> None:
        assert window.start_action.isEnabled(), (window.is_running(), [str(r) for r in window.reasons()])

    qtbot.waitUntil(can_start, timeout=60_000)  # the scan of 24 images
    with qtbot.waitSignal(window.run_finished, timeout=RUN_MS):
        assert window.start()
    assert window.last_error is None, window.last_error
    assert window.last_result.epochs_completed == 2


def run_monkey(window, qtbot, answer, tmp_path, seed: int, steps: int, runs_between: int) -> dict:
    place = _places(tmp_path)
    window.show()
    qtbot.waitExposed(window)
    assert window.open_path(place["project"], ask=False)
    monkey = Monkey(window, qtbot, answer, seed, place)
    beats: list[float] = [time.monotonic()]
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: beats.append(time.monotonic()))
    heartbeat.start(50)
    done: list[str] = []
    started = time.monotonic()
    try:
        with qtbot.captureExceptions() as exceptions:
            for i in range(steps):
                done.append(monkey.step())
                QApplication.processEvents()
                where = f"seed {seed}, action {i}: {done[-1]} (before it: {done[-6:-1]})"
                assert not exceptions, f"{where}: {exceptions[0][1]!r}"
                assert window.isVisible(), where
                assert len(tasks.running()) <= 4, f"{where}: {len(tasks.running())} threads"  # run, scan, advice, a Results task
                if runs_between and (i + 1) % (steps // (runs_between + 1)) == 0 and i + 1 < steps:
                    _short_run(window, qtbot, place)
            window.stop_and_join()
            qtbot.waitUntil(lambda: not window.data_panel.is_scanning() and not tasks.running(), timeout=RUN_MS)
            assert not exceptions, exceptions
    finally:
        monkey.remove()
        heartbeat.stop()
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    assert max(gaps) < 60, f"the event loop stood still for {max(gaps):.1f} s (a hang)"
    # The person puts right what the fields show refused, saves, and the file loads back as the window had it.
    for panel in window.setup_panels.values():
        panel.show_values()
    final = tmp_path / "final.thaw.toml"
    assert window.save_to(final), window.problems()
    assert projects.to_dict(projects.load(final)) == projects.to_dict(window.project)
    assert window.open_path(final, ask=False) and not window.dirty
    return {"seed": seed, "actions": steps, "seconds": round(time.monotonic() - started, 1),
            "longest_wait_s": round(max(gaps), 2), "by_kind": dict(monkey.done), "touched": dict(monkey.touched)}


def test_a_careless_hand_breaks_nothing(window, qtbot, answer, tmp_path):
    """The CI variant: one seed, 1000 actions, a short real run half-way (about a minute)."""
    summary = run_monkey(window, qtbot, answer, tmp_path, seed=21, steps=1000, runs_between=1)
    print(summary)
    assert summary["by_kind"].get("start", 0) and summary["by_kind"].get("type", 0)
    touched = summary["touched"]
    assert touched.get("Results") and touched.get("Runs") and summary["by_kind"].get("item")  # main's new parts too
    assert touched.get("recentRunsMenu") and touched.get("openRun", 0) + touched.get("openRunButton", 0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_more_careless_hands(window, qtbot, answer, tmp_path, seed):
    """Five more seeds, 4000 actions each, three short runs in between (minutes)."""
    print(run_monkey(window, qtbot, answer, tmp_path, seed=seed, steps=4000, runs_between=3))
