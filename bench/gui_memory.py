"""The window's memory: resident size of the idle window, then after each of 10 runs in a row in one window.

The real main window (offscreen) on the inductive demo; each run is the demo's recipe (feature extraction on the
feature cache, a few epochs) started as the Start button does, and the window waits for its end. After each run
the event loop settles and Python's collector runs (as the window's own timer would), then the resident size is
read (/proc/self/status, VmRSS). Goal: no growth beyond the first run's, within 5 % (a run that leaked its
model, cache, plots' buffers or thread would add megabytes each time).

    .venv/bin/python bench/gui_memory.py [--runs 10] [--epochs 3] [--preset feature_extraction]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from _common import machine, table  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def settle(app, seconds: float = 1.0) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)
    gc.collect()
    app.processEvents()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--preset", default="feature_extraction")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    os.environ.update({"THAW_DATA_DIR": tmp.name + "/data", "TORCH_HOME": tmp.name + "/torch",
                       "XDG_CONFIG_HOME": tmp.name + "/config"})
    from PySide6.QtWidgets import QApplication

    from gui.app import create_window

    app = QApplication.instance() or QApplication([])
    print(machine(), "| load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    window = create_window(None, demo="inductive")
    window.show()
    while window.data_panel.is_scanning():
        app.processEvents()
    window.plots  # noqa: B018 - made after the first paint, as on screen
    settle(app, 2.0)
    rows = [["idle window", rss_mib(), "", ""]]
    window.project.set("freeze.preset", args.preset)
    window.project.set("train.epochs", args.epochs)
    window.project.set("train.out_dir", tmp.name + "/runs")
    after = []
    for i in range(1, args.runs + 1):
        assert window.start(), window.problems()
        while window.is_running() or (window.last_result is None and window.last_error is None):
            app.processEvents()
            time.sleep(0.005)
        assert window.last_result is not None, window.last_error
        settle(app)
        after.append(rss_mib())
        rows.append([f"after run {i}", after[-1], after[-1] - after[0], f"{100 * (after[-1] / after[0] - 1):+.1f} %"])
    window.close()
    print(table(["", "RSS MiB", "since run 1 MiB", "since run 1"], rows))
    growth = after[-1] / after[0] - 1
    print(f"{args.runs} runs of the demo ({args.preset}, {args.epochs} epochs) in one window, each started as Start "
          "does; RSS read after the event loop settles and a collection")
    print(f"headline: idle window {rows[0][1]:.0f} MiB, after run 1 {after[0]:.0f} MiB, after run {args.runs} "
          f"{after[-1]:.0f} MiB: {100 * growth:+.1f} % since run 1 (goal <= +5 %: "
          f"{'met' if growth <= 0.05 else 'missed'})")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
