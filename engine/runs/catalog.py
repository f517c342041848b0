"""The run folders of a project, with their key settings and results: what the window lists under Runs and
offers to open, read from the folders alone (nothing is loaded but small text files).

A run folder is one that holds ``project.thaw.toml`` (written when the run starts, `engine.runs.folder`).
Its settings are that file's, every key with its value (a key added to Thaw after the run has its default);
its results come from ``summary.json`` (how training went) and ``evaluation.json`` (the kept model on the
held-out split), either of which may be missing (a run going on, stopped before the end, or from before
evaluations). `differing` is the rule for "which settings differ" between runs that the comparison shows.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import project as proj
from engine.errors import RunError, ThawError
from engine.events import EpochEnded, FitEnded
from engine.loading import train_steps
from engine.results.evaluation import PREDICTIONS_FILE, REPORT_FILE
from engine.runs import checkpoint

PROJECT_FILE, SUMMARY_FILE, METRICS_FILE, MODEL_FILE = (
    "project.thaw.toml", "summary.json", "metrics.csv", "model.safetensors")
EVALUATIONS = "evaluations"  # a run's evaluations of other sources (`engine.results.evaluation`)
# The settings the list of runs shows for each run, in this order.
KEY_SETTINGS = ("model.arch", "model.weights", "freeze.preset", "freeze.last_blocks", "head.kind", "train.epochs",
                "train.lr", "train.batch_size", "data.image_size", "data.augment")
# Labels, not settings: two runs named apart, or written elsewhere, trained the same way.
NOT_COMPARED = frozenset({"name", "train.out_dir"})
# Settings that only mean something when another has a given value (else they are left unused by the run).
APPLIES_WHEN = {
    "freeze.last_blocks": ("freeze.preset", ("last_blocks",)),
    "freeze.frozen": ("freeze.preset", ("custom",)),
    "head.hidden": ("head.kind", ("mlp",)),
    "head.dropout": ("head.kind", ("mlp",)),
    "data.val_fraction": ("data.val", ("",)),
    "data.test_fraction": ("data.test", ("",)),
}


@dataclass(frozen=True)
class Evaluated:
    """One evaluation of a run's model: its own held-out split, or another source under ``evaluations/``."""

    folder: Path
    split: str         # "test", "validation" or "other"
    source: str
    images: int
    accuracy: float | None
    macro_f1: float | None
    ece: float | None

    def describe(self) -> str:
        what = f"{self.split} split" if self.split != "other" else Path(self.source).name or self.source
        acc = f"{self.accuracy:.1%}" if self.accuracy is not None else "-"
        return f"{what}: {acc}, {self.images} images"


@dataclass(frozen=True)
class RunRecord:
    """A run folder, as read: its settings (every project key), its summary and its own evaluation."""

    folder: Path
    settings: dict[str, Any]
    summary: dict[str, Any]         # {} before the run has ended
    evaluation: Evaluated | None    # the kept model on the run's own held-out split
    has_model: bool
    has_checkpoint: bool
    started: float                  # when the run wrote its project file (seconds since the epoch)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def status(self) -> str:
        """How the run stands: finished, stopped early, stopped (by you), interrupted (a checkpoint to
        continue from, no summary: a crash or a quit), or incomplete (still going, or ended before its first
        epoch)."""
        if self.summary:
            s = self.summary
            return "stopped" if s.get("stopped_by_user") else "stopped early" if s.get("stopped_early") else "finished"
        return "interrupted" if self.has_checkpoint else "incomplete"

    @property
    def best_val_accuracy(self) -> float | None:
        return _number(self.summary.get("best_val_accuracy"))

    @property
    def epochs_completed(self) -> int | None:
        done = self.summary.get("epochs_completed")
        return done if isinstance(done, int) else None

    @property
    def steps_per_epoch(self) -> int | None:
        """Training steps per epoch, as the loop counts them in one process (`engine.loading.train_steps`)."""
        n, b = self.summary.get("train_size"), self.summary.get("batch_size") or self.settings.get("train.batch_size")
        return train_steps(n, b) if isinstance(n, int) and isinstance(b, int) and n > 0 and b > 0 else None

    def fit_ended(self) -> FitEnded | None:
        """The run's end as the window's summary card shows it (None before the run has ended)."""
        s = self.summary
        if not s:
            return None
        return FitEnded(epochs_completed=int(s.get("epochs_completed") or 0),
                        best_val_accuracy=_nan(s.get("best_val_accuracy")),
                        final_val_accuracy=_nan(s.get("final_val_accuracy")),
                        stopped_early=bool(s.get("stopped_early")), stopped_by_user=bool(s.get("stopped_by_user")),
                        seconds=float(s.get("seconds") or 0.0), frozen_verified=bool(s.get("frozen_verified")),
                        run_dir=str(self.folder), skipped_files=len(s.get("skipped_files") or []))


def is_run(folder: str | os.PathLike) -> bool:
    return (Path(folder) / PROJECT_FILE).is_file()


def read_run(folder: str | os.PathLike) -> RunRecord:
    """The run in `folder`; `RunError` saying why when it is not one (or its project file is unreadable)."""
    folder = Path(folder).expanduser().absolute()
    if not folder.is_dir():
        raise RunError(f"{folder} is not a folder; choose a run folder (one that holds {PROJECT_FILE})")
    if not is_run(folder):
        raise RunError(f"{folder} is not a run folder: it has no {PROJECT_FILE}. Run folders are made by training, "
                       "inside the project's output folder")
    try:
        project = proj.load(folder / PROJECT_FILE)
    except ThawError as exc:
        raise RunError(f"cannot read the run in {folder}: {exc}") from None
    summary = _json(folder / SUMMARY_FILE)
    return RunRecord(folder, {k: project.get(k) for k in proj.KEYS}, summary if isinstance(summary, dict) else {},
                     evaluated(folder), (folder / MODEL_FILE).is_file(), checkpoint.path_in(folder).is_file(),
                     (folder / PROJECT_FILE).stat().st_mtime)


def runs_in(folder: str | os.PathLike) -> list[RunRecord]:
    """The runs directly inside `folder` (a project's output folder), newest first; folders that are not runs,
    or whose project file cannot be read, are left out."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for sub in folder.iterdir():
        if sub.is_dir() and is_run(sub):
            try:
                found.append(read_run(sub))
            except (RunError, OSError):
                continue
    return sorted(found, key=lambda r: (r.started, r.name), reverse=True)


def project_runs(project: proj.Project) -> list[RunRecord]:
    """The runs of `project`: those in its output folder (``train.out_dir``), newest first."""
    return runs_in(project.resolve(project.train.out_dir))


def evaluated(folder: str | os.PathLike) -> Evaluated | None:
    """The evaluation written in `folder` (its figures only; predictions.csv stays on disk), or None."""
    folder = Path(folder)
    report = _json(folder / REPORT_FILE)
    if not isinstance(report, dict) or not (folder / PREDICTIONS_FILE).is_file():
        return None
    macro = (report.get("averages") or {}).get("macro") or {}
    return Evaluated(folder, str(report.get("split", "other")), str(report.get("source", "")),
                     int(report.get("images") or 0), _number(report.get("accuracy")), _number(macro.get("f1")),
                     _number((report.get("calibration") or {}).get("ece")))


def evaluations(run: RunRecord) -> list[Evaluated]:
    """Every evaluation of the run's model: its own first, then those of other sources (by folder name)."""
    where = run.folder / EVALUATIONS
    others = sorted(f for f in where.iterdir() if f.is_dir()) if where.is_dir() else []
    found = [evaluated(f) for f in others]
    return [e for e in [run.evaluation, *found] if e is not None]


def history(folder: str | os.PathLike, summary: dict[str, Any] | None = None) -> list[EpochEnded]:
    """The run's epochs from metrics.csv, as the training plots take them; a missing figure is NaN, the
    throughput is the training images over the epoch's training seconds (`summary`'s count). `RunError` for
    a damaged file; [] for none."""
    path = Path(folder) / METRICS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"cannot read {path}: {exc}") from None
    rows: dict[int, dict[str, dict[str, str]]] = {}
    try:
        for row in csv.DictReader(io.StringIO(text)):
            rows.setdefault(int(row["epoch"]), {})[row["split"]] = row
    except (KeyError, ValueError, TypeError) as exc:
        raise RunError(f"{path} is damaged ({exc}); it should start with epoch,split,loss,accuracy,lr,seconds") from None
    images = (summary or {}).get("train_size")
    planned = (summary or {}).get("epochs_planned") or (max(rows) if rows else 0)
    out, best = [], -math.inf
    for epoch in sorted(rows):
        train, val = rows[epoch].get("train", {}), rows[epoch].get("val", {})
        val_acc, train_seconds = _cell(val, "accuracy"), _cell(train, "seconds")
        is_best = val_acc > best
        best = max(best, val_acc) if not math.isnan(val_acc) else best
        speed = images / train_seconds if isinstance(images, int) and train_seconds > 0 else math.nan
        out.append(EpochEnded(epoch=epoch, epochs=int(planned), train_loss=_cell(train, "loss"),
                              train_accuracy=_cell(train, "accuracy"), val_loss=_cell(val, "loss"),
                              val_accuracy=val_acc, lr=_cell(train, "lr"),
                              seconds=_sum(train_seconds, _cell(val, "seconds")), images_per_second=speed,
                              eta_seconds=0.0, best_val_accuracy=best if best > -math.inf else math.nan,
                              is_best=is_best, train_seconds=train_seconds, val_seconds=_cell(val, "seconds")))
    return out


def applies(settings: dict[str, Any], key: str) -> bool:
    """Whether the run used setting `key` (the number of last blocks means nothing to a full fine-tune)."""
    if key not in APPLIES_WHEN:
        return True
    other, values = APPLIES_WHEN[key]
    return settings.get(other) in values


def differing(runs: list[RunRecord]) -> list[str]:
    """The settings (project keys, in the project's order) that not all of `runs` share: those the runs used
    with different values (a setting a run did not use counts as its own value, "unused"). Names and output
    folders are left out."""
    def value(run: RunRecord, key: str) -> Any:
        return run.settings.get(key) if applies(run.settings, key) else None

    return [k for k in proj.KEYS if k not in NOT_COMPARED and len({repr(value(r, k)) for r in runs}) > 1]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _nan(x: Any) -> float:
    n = _number(x)
    return math.nan if n is None else n


def _cell(row: dict[str, str], key: str) -> float:
    text = row.get(key) or ""
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def _sum(a: float, b: float) -> float:
    return sum(x for x in (a, b) if not math.isnan(x))
