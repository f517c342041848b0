"""activity.csv in a run folder: which layers learned, one row per block and measurement (`LayerActivity`).

    step,epoch,block,trained,grad_norm,update_ratio

Rewritten (atomically) after every epoch and when the run ends; a run too short for a measurement (or with
``train.activity_every = 0``) leaves the header alone. A resumed run keeps the rows of the epochs its
checkpoint holds and adds its own.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from engine import events as ev
from engine.io.atomic import write_text_atomic

FILENAME = "activity.csv"
HEADER = ("step", "epoch", "block", "trained", "grad_norm", "update_ratio")


class ActivityFile(ev.Handler):
    """Collects `LayerActivity` events into `run_dir`/activity.csv; `epochs_kept`: a resumed run's epochs so far."""

    def __init__(self, run_dir: Path, epochs_kept: int = 0) -> None:
        self.path = Path(run_dir) / FILENAME
        self.rows: list[list[str]] = []
        if epochs_kept and self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as f:
                self.rows = [r for r in list(csv.reader(f))[1:] if len(r) == len(HEADER) and r[1].isdigit()
                             and int(r[1]) <= epochs_kept]
        self.written = -1  # rows in the file; written once at least (a short run may have no measurement)

    def on_activity(self, e: ev.LayerActivity) -> None:
        for block, trained, grad, ratio in zip(e.blocks, e.trained, e.grad_norms, e.update_ratios, strict=True):
            self.rows.append([str(e.global_step), str(e.epoch), block, "1" if trained else "0", f"{grad:.6g}",
                              f"{ratio:.6g}"])

    def on_epoch_ended(self, _e: ev.EpochEnded) -> None:
        self.write()

    def on_fit_ended(self, _e: ev.FitEnded) -> None:
        self.write()

    def write(self) -> None:
        if len(self.rows) == self.written:
            return
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(self.rows)
        write_text_atomic(self.path, buf.getvalue())
        self.written = len(self.rows)
