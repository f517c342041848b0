"""Start-up: from launch to the main window painted with the demo project loaded, against the bare imports.

`python main.py` with ``THAW_EXIT_AFTER_PAINT=1`` (the window quits after its first paint, `gui/app.py`) is
timed against ``python -c "import torch, torchvision, PySide6.QtWidgets"``: what any PyTorch + Qt program
pays before doing anything. Runs alternate (ABBA) after one untimed round that writes the demo's images;
both include interpreter start and exit. Headline: median wall-time ratio; goal <= 1.3.

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
               "THAW_EXIT_AFTER_PAINT": "1", "THAW_DATA_DIR": tmp + "/data", "TORCH_HOME": tmp + "/torch",
               "XDG_CONFIG_HOME": tmp + "/config"}
        t = alternate({"thaw": launcher([sys.executable, "main.py"], env),
                       "imports": launcher([sys.executable, "-c", BASELINE], env)}, args.repeats)
    rows = []
    for kind in ("wall", "cpu"):
        a = [getattr(x, kind) for x in t["thaw"]]
        b = [getattr(x, kind) for x in t["imports"]]
        rows.append([kind, median(a), median(b), min(a), min(b), median(a) / median(b)])
    print(table(["clock", "main.py to first paint s", "bare imports s", "main.py min", "imports min",
                 "ratio of medians"], rows))
    print(f"{args.repeats} alternating launches each; cpu = user + system time of the child process")
    ratio = rows[0][5]
    print(f"headline: start-up to painted window / bare imports = {ratio:.2f} wall, {rows[1][5]:.2f} cpu "
          f"(goal <= 1.3: {'met' if ratio <= 1.3 else 'missed'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
