"""An evaluation of a run's model on labelled images, written beside the run.

    evaluation.json   every figure (`metrics.report`), which data (source, split, images, files that failed),
                      which model (its file's sha256) and when
    predictions.csv   path,label,predicted,confidence,loss,top5 (top5: "class:probability" joined by "|")

The run's own evaluation (its test split, else its validation split) is written in the run folder itself; one
of another source in ``<run>/evaluations/<source name>-<8 hex>/``, so none replaces another and no data folder
is ever written to. Both files are written under temporary names and renamed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import Sample
from engine.errors import DataError, RunError
from engine.io.atomic import write_text_atomic
from engine.loading import ImageDataset, prepare_data
from engine.model.zoo import arch_info
from engine.results.metrics import Predictions, report
from engine.results.predict import MODEL_FILE, TrainedModel, labelled_samples, predict

REPORT_FILE, PREDICTIONS_FILE = "evaluation.json", "predictions.csv"
CSV_HEADER = ("path", "label", "predicted", "confidence", "loss", "top5")


@dataclass
class Evaluation:
    folder: Path            # where its two files are
    report: dict[str, Any]  # evaluation.json
    predictions: Predictions


def own_split(trained: TrainedModel) -> tuple[list[Sample], str, str]:
    """The run's held-out images, split again exactly as the run split them: (samples, split, source): its
    test split if it had one, else its validation split."""
    data = prepare_data(trained.project, arch_info(trained.project.model.arch).preprocess)
    test = getattr(data, "test", None)
    d = trained.project.data
    if test is not None and len(test):
        return test.samples, "test", d.test or d.train
    return data.val.samples, "validation", d.val or d.train


def evaluation_folder(run_dir: Path, source: str | os.PathLike | None) -> Path:
    """The run folder for its own split; ``evaluations/<name>-<hash of the source's path>`` for another."""
    if source is None:
        return run_dir
    where = Path(source).expanduser().absolute()
    name = re.sub(r"[^\w.-]+", "_", where.stem or "source").strip("._") or "source"
    return run_dir / "evaluations" / f"{name}-{hashlib.sha256(str(where).encode()).hexdigest()[:8]}"


def evaluate(trained: TrainedModel, samples: list[Sample], *, split: str, source: str, folder: Path,
             skipped: list[tuple[str, str]] = (), stop: threading.Event | None = None,
             on_batch: Callable[[int, int], None] | None = None,
             decoded: ImageDataset | None = None) -> Evaluation | None:
    """Predict `samples` (`decoded`: as `predict` takes it), compute every figure and write both files into
    `folder`; None (nothing written) when `stop` was set before the end."""
    if not samples:
        raise DataError(f"no usable images to evaluate in {source}")
    predictions, failed = predict(trained, samples, stop=stop, on_batch=on_batch, decoded=decoded)
    if stop is not None and stop.is_set():
        return None
    if not len(predictions):
        raise DataError(f"none of the {len(samples)} images in {source} could be read")
    figures = report(predictions)
    figures.update(split=split, source=str(source), model_file=str(trained.run_dir / MODEL_FILE),
                   model_sha256=trained.model_hash, arch=trained.project.model.arch, image_size=trained.image_size,
                   evaluated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   failed=[{"path": p, "reason": r} for p, r in [*skipped, *failed]])
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / PREDICTIONS_FILE, predictions_csv(predictions))
    write_text_atomic(folder / REPORT_FILE, json.dumps(_finite(figures), indent=1) + "\n")
    return Evaluation(folder, figures, predictions)


def evaluate_run(trained: TrainedModel, source: str | os.PathLike | None = None, *,
                 stop: threading.Event | None = None,
                 on_batch: Callable[[int, int], None] | None = None) -> Evaluation | None:
    """Evaluate on the run's own held-out split, or on another labelled folder or CSV list `source` (None
    when stopped)."""
    if source is None:
        samples, split, where = own_split(trained)
        skipped: list[tuple[str, str]] = []
    else:
        samples, skipped = labelled_samples(trained, source)
        split, where = "other", str(Path(source).expanduser().absolute())
    return evaluate(trained, samples, split=split, source=str(where), skipped=skipped, stop=stop,
                    on_batch=on_batch, folder=evaluation_folder(trained.run_dir, source))


def predictions_csv(p: Predictions) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    names = p.classes
    for i, path in enumerate(p.paths):
        top = "|".join(f"{names[c]}:{q:.6g}" for c, q in zip(p.top_classes[i], p.top_probs[i], strict=True))
        label = names[p.labels[i]] if p.labels[i] >= 0 else ""
        loss = "" if math.isnan(p.losses[i]) else f"{p.losses[i]:.6g}"
        w.writerow([path, label, names[p.predicted[i]], f"{p.confidence[i]:.6g}", loss, top])
    return buf.getvalue()


def read(folder: str | os.PathLike) -> Evaluation:
    """An evaluation written by `evaluate`, back: its figures and predictions (for the window, for comparing)."""
    folder = Path(folder)
    try:
        figures = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
        text = (folder / PREDICTIONS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RunError(f"{folder} holds no evaluation ({Path(exc.filename).name} is missing)") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read the evaluation in {folder}: {exc}") from None
    classes = figures.get("classes")
    if not isinstance(classes, list):
        raise RunError(f"{folder / REPORT_FILE} lists no classes")
    index = {name: i for i, name in enumerate(classes)}
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != CSV_HEADER:
        raise RunError(f"{folder / PREDICTIONS_FILE} does not start with {','.join(CSV_HEADER)}")
    try:
        parsed = [_row(r, index) for r in rows[1:]]
    except (KeyError, ValueError, IndexError) as exc:
        raise RunError(f"{folder / PREDICTIONS_FILE} is damaged: {exc}") from None
    k = max((len(ranked) for _, _, ranked, _ in parsed), default=1)
    pad = [ranked + [(ranked[-1][0], 0.0)] * (k - len(ranked)) for _, _, ranked, _ in parsed]
    predictions = Predictions(classes, [r[0] for r in parsed], np.array([r[1] for r in parsed], np.int64),
                              np.array([[c for c, _ in t] for t in pad], np.int64).reshape(-1, k),
                              np.array([[q for _, q in t] for t in pad], np.float64).reshape(-1, k),
                              np.array([r[3] for r in parsed], np.float64))
    return Evaluation(folder, figures, predictions)


def _row(r: list[str], index: dict[str, int]) -> tuple[str, int, list[tuple[int, float]], float]:
    """(path, label, [(class, probability)] likeliest first, loss) of one predictions.csv row."""
    path, label, _predicted, _confidence, loss, top = r
    ranked = [(index[name], float(q)) for name, q in (item.rsplit(":", 1) for item in top.split("|"))]
    return path, index[label] if label else -1, ranked, float(loss) if loss else math.nan


def _finite(value: Any) -> Any:
    """NaN (a figure of no image) as null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
