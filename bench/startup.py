"""Start-up: launch to the first paint (the start page) and to a usable demo window, against the bare imports.

`python main.py` with ``THAW_EXIT_AFTER_PAINT=1`` (it leaves once the start page has painted, `gui/app.py`) and
`python main.py --demo inductive` with ``THAW_EXIT_AFTER_PAINT=window`` (it quits once the main window has
painted with the demo loaded) are timed against ``python -c "import torch, torchvision, PySide6.QtWidgets"``:
what any PyTorch + Qt program pays before doing anything. Runs alternate after one untimed round that writes
the demo's images; all include interpreter start and exit. Headlines: median wall-time ratios; goals: first
paint <= 0.3, usable window <= 1.15.

    .venv/bin/python bench/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

from _common import ROOT, Timing, alternate, machine, median, table

BASELINE = "import torch, torchvision, PySide6.QtWidgets"


def launcher(cmd: list[str], env: dict[str, str]):
    def run() -> Timing:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Timing(wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               "THAW_DATA_DIR": tmp + "/data", "TORCH_HOME": tmp + "/torch", "XDG_CONFIG_HOME": tmp + "/config"}
        t = alternate({"first paint": launcher([sys.executable, "main.py"], {**env, "THAW_EXIT_AFTER_PAINT": "1"}),
                       "usable demo": launcher([sys.executable, "main.py", "--demo", "inductive"],
                                               {**env, "THAW_EXIT_AFTER_PAINT": "window"}),
                       "imports": launcher([sys.executable, "-c", BASELINE], env)}, args.repeats)
    rows = []
    for name in ("first paint", "usable demo"):
        for kind in ("wall", "cpu"):
            a = [getattr(x, kind) for x in t[name]]
            b = [getattr(x, kind) for x in t["imports"]]
            rows.append([name, kind, median(a), median(b), min(a), min(b), median(a) / median(b)])
    print(table(["launch to", "clock", "main.py s", "bare imports s", "main.py min", "imports min",
                 "ratio of medians"], rows))
    print(f"{args.repeats} alternating launches each; cpu = user + system time of the child process")
    first, usable = rows[0][6], rows[2][6]
    print(f"headline: first paint / bare imports = {first:.2f} (goal <= 0.3: {'met' if first <= 0.3 else 'missed'}), "
          f"usable demo window / bare imports = {usable:.2f} wall (goal <= 1.15: "
          f"{'met' if usable <= 1.15 else 'missed'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
