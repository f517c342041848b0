"""Plot redraw: the cost of one redraw of the live loss plot holding 10^4, 10^5 and 10^6 points.

The real `gui.plots.TrainingPlots` (offscreen), its loss plot filled with N noisy steps (raw and smoothed
curves, as training draws them); one redraw = `setData` of the curves plus a synchronous repaint of the
plot. The baseline in the same run is the same pyqtgraph plot given every point (`setData(x, y)`: no Thaw
decimation, no peak downsampling, no clip-to-view), i.e. what a plain `plot(x, y)` costs. Times are the GUI thread's CPU time (`time.thread_time`: on a shared, loaded machine wall time mostly measures
the other processes). Headline: median ms per redraw at 10^6 points; goal <= 8 ms.

    .venv/bin/python bench/plot_redraw.py [--repeats 15] [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from _common import machine, median, table  # noqa: E402


def plain_redraw(plot) -> None:
    """What a plain pyqtgraph plot does: every point of every curve to `setData`."""
    for curve, series in plot.curves.values():
        curve.setData(series.x, series.y)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    from gui.plots.training import TrainingPlots

    app = QApplication.instance() or QApplication([])
    print(machine(), f"load average {os.getloadavg()[0]:.1f}")
    views = {}
    for name, fast in (("thaw", True), ("plain", False)):
        p = TrainingPlots()
        p.timer.stop()  # redraws are driven here, one at a time
        item = p.loss.widget.getPlotItem()
        if not fast:
            item.setDownsampling(auto=False, ds=1)
            item.setClipToView(False)
        p.resize(1200, 800)
        p.show()
        views[name] = p
    app.processEvents()
    rng = np.random.default_rng(0)
    rows, at_max = [], None
    for n in args.sizes:
        x = np.arange(1, n + 1, dtype=np.float64)
        y = np.exp(-x / n * 3) + rng.normal(0, 0.05, n)
        smooth = np.convolve(y, np.ones(50) / 50, mode="same")
        ms = {}
        for name, p in views.items():
            for series, values in ((p.train_loss_raw, y), (p.train_loss, smooth)):
                series.clear()
                series.extend(x, values)
            draw = p.loss.redraw if name == "thaw" else (lambda p=p: plain_redraw(p.loss))
            draw()
            p.loss.widget.viewport().repaint()  # first draw: autorange settles
            times = []
            for r in range(args.repeats):
                for series in (p.train_loss_raw, p.train_loss):  # one new point per curve, as a live run adds
                    series.extend([n + 1 + r], [smooth[-1]])
                t0 = time.thread_time()
                draw()
                p.loss.widget.viewport().repaint()
                times.append((time.thread_time() - t0) * 1000)
            ms[name] = times
        rows.append([n, median(ms["thaw"]), max(ms["thaw"]), median(ms["plain"]),
                     median(ms["plain"]) / median(ms["thaw"])])
        at_max = rows[-1]
    print(table(["points per curve", "thaw CPU ms (median)", "thaw CPU ms (max)", "plain pyqtgraph CPU ms", "plain / thaw"],
                rows))
    print(f"{args.repeats} redraws each of the loss plot (2 curves of N points), plot 600x400 px of a 1200x800 "
          "widget; plain = every point to setData, no downsampling, no clip-to-view")
    print(f"headline: one loss-plot redraw at {at_max[0]:,} points takes {at_max[1]:.1f} ms CPU "
          f"(goal <= 8 ms: {'met' if at_max[1] <= 8 else 'missed'}), {at_max[4]:.1f}x faster than plain")
    for p in views.values():
        p.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
