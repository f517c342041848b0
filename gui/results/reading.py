"""A run as the Results tab shows it, read from its folder off the GUI thread: its record and curves, its
evaluations, and the one shown with its three matrices and class orders (all the engine's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Shown:
    """A run as the view shows it: read in the background by `load`."""

    record: Any                       # engine.runs.catalog.RunRecord
    epochs: list                      # its curves (EpochEnded), for the training plots
    evaluations: list                 # catalog.Evaluated, its own first
    evaluation: Any = None            # engine.results.evaluation.Evaluation shown (None: not evaluated yet)
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    orders: dict[str, list[int]] = field(default_factory=dict)


def load(folder: Path, evaluation: Path | None = None) -> Shown:
    """Read the run in `folder` and the evaluation in `evaluation` (default: its own, else the first)."""
    from engine.results import evaluation as ev
    from engine.results import metrics as m
    from engine.runs import catalog

    record = catalog.read_run(folder)
    shown = Shown(record, catalog.history(folder, record.summary), catalog.evaluations(record))
    chosen = evaluation or (shown.evaluations[0].folder if shown.evaluations else None)
    if chosen is not None:
        shown.evaluation = done = ev.read(chosen)
        p = done.predictions
        shown.matrices = {"counts": m.confusion(p), "recall": m.confusion(p, "true"),
                          "precision": m.confusion(p, "pred")}
        shown.orders = {by: m.class_order(p, by) for by in m.ORDERS}
    return shown
