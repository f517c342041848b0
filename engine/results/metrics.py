"""The figures of a set of predictions, and the views the window draws from them.

Everything derives from one `Predictions`: per image its path, true label, the top-k classes with their
probabilities and the loss; numbers and paths only (keeping the images ran fastai out of memory, fastai#3141),
so 10,000 images take a few hundred kilobytes. Every class counts (as scikit-learn's ``labels=range(C)``): a class
missing from the data is a class with no support, not an error. The matrix and the per-class figures are counted
here with numpy, equal to scikit-learn's to 1e-12 (tests/engine/results/test_metrics.py holds them to it):
importing scikit-learn costs 0.85-1.1 s of CPU, which every run paid at its final evaluation (the whole of what
a run cost beyond a bare loop's, bench/peers.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CALIBRATION_BINS = 15  # equal-width bins on the top-1 confidence (Guo et al. 2017)


@dataclass
class Predictions:
    """What a model said about N images. `top_classes[i]` are image i's k likeliest classes, likeliest first,
    `top_probs[i]` their probabilities; `labels[i]` is -1 for an image without a label (predict only), and
    then `losses[i]` is NaN."""

    classes: list[str]
    paths: list[str]
    labels: np.ndarray       # int64 (N,)
    top_classes: np.ndarray  # int64 (N, k)
    top_probs: np.ndarray    # float64 (N, k)
    losses: np.ndarray       # float64 (N,): cross-entropy of the true class

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def predicted(self) -> np.ndarray:
        return self.top_classes[:, 0]

    @property
    def confidence(self) -> np.ndarray:
        return self.top_probs[:, 0]

    @property
    def k(self) -> int:
        return self.top_classes.shape[1]

    def labelled(self) -> bool:
        return bool(len(self)) and bool((self.labels >= 0).all())


def accuracy(p: Predictions) -> float:
    return float((p.predicted == p.labels).mean()) if len(p) else float("nan")


def top_k_accuracy(p: Predictions, k: int) -> float:
    """The share of images whose true class is among their k likeliest (k up to the k kept)."""
    if not 1 <= k <= p.k:
        raise ValueError(f"top-{k} accuracy needs the {k} likeliest classes; {p.k} are kept")
    return float((p.top_classes[:, :k] == p.labels[:, None]).any(axis=1).mean()) if len(p) else float("nan")


def confusion(p: Predictions, normalize: str | None = None) -> np.ndarray:
    """Rows are true classes, columns predicted ones; `normalize`: None (counts), "true" (each row sums to
    1: recall on the diagonal), "pred" (each column: precision) or "all"; an empty row or column stays 0."""
    c = len(p.classes)
    labelled = p.labels >= 0  # an image without a label (predict only) is in no row
    counts = np.bincount(p.labels[labelled] * c + p.predicted[labelled], minlength=c * c).reshape(c, c)
    if normalize is None:
        return counts
    total = {"true": counts.sum(axis=1, keepdims=True), "pred": counts.sum(axis=0, keepdims=True),
             "all": counts.sum()}[normalize]
    return np.divide(counts, total, out=np.zeros((c, c)), where=np.asarray(total) > 0)


def _counts(p: Predictions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: true positives, images predicted as it, and images of it (its support)."""
    cm = confusion(p)
    return np.diag(cm).astype(float), cm.sum(axis=0).astype(float), cm.sum(axis=1)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b > 0)


def per_class(p: Predictions) -> dict[str, list[float] | list[int]]:
    """Precision, recall, F1 and support of each class, in class order (0 where a class has no support)."""
    tp, predicted, support = _counts(p)
    return {"precision": _ratio(tp, predicted).tolist(), "recall": _ratio(tp, support).tolist(),
            "f1": _ratio(2 * tp, predicted + support).tolist(), "support": support.astype(int).tolist()}


def averages(p: Predictions) -> dict[str, dict[str, float]]:
    """Macro and support-weighted averages over the classes the data has (a class absent from it would
    pull the macro average down with a zero that says nothing about the model)."""
    figures = per_class(p)
    support = np.asarray(figures["support"], dtype=float)
    present = support > 0
    out = {}
    for average, weights in (("macro", present.astype(float)), ("weighted", support)):
        total = weights.sum()
        out[average] = {name: float(np.asarray(figures[name]) @ weights / total) if total else 0.0
                        for name in ("precision", "recall", "f1")}
    return out


def calibration(p: Predictions, n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Expected calibration error on the top-1 confidence over `n_bins` equal-width bins (lo, hi], and each
    bin's count, accuracy and mean confidence (the reliability diagram's data)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, p.confidence, side="left") - 1, 0, n_bins - 1)
    correct = (p.predicted == p.labels).astype(float)
    bins, ece = [], 0.0
    for b in range(n_bins):
        inside = which == b
        count = int(inside.sum())
        acc = float(correct[inside].mean()) if count else None
        conf = float(p.confidence[inside].mean()) if count else None
        if count:
            ece += count / len(p) * abs(acc - conf)
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": count, "accuracy": acc,
                     "confidence": conf})
    return {"ece": ece if len(p) else float("nan"), "bins": bins}


def cell_members(p: Predictions, true: int, predicted: int) -> np.ndarray:
    """The images of confusion cell (true, predicted), most confident first."""
    members = np.flatnonzero((p.labels == true) & (p.predicted == predicted))
    return members[np.argsort(-p.confidence[members], kind="stable")]


def worst(p: Predictions) -> np.ndarray:
    """The misclassified images, highest loss first (the most confidently wrong: often a wrong label)."""
    wrong = np.flatnonzero(p.labels != p.predicted)
    return wrong[np.argsort(-p.losses[wrong], kind="stable")]


def most_confused(p: Predictions, min_count: int = 1) -> list[tuple[int, int, int]]:
    """(true, predicted, count) of the off-diagonal cells with at least `min_count` images, most first."""
    cm = confusion(p)
    np.fill_diagonal(cm, 0)
    rows, cols = np.nonzero(cm >= max(1, min_count))
    pairs = [(int(i), int(j), int(cm[i, j])) for i, j in zip(rows, cols, strict=True)]
    return sorted(pairs, key=lambda t: (-t[2], t[0], t[1]))


ORDERS = ("name", "error")


def class_order(p: Predictions, by: str = "name") -> list[int]:
    """The classes in the order to show them: by name, or by error (the share of a class's images predicted as
    another, highest first; classes with no images last); ties by name."""
    names = [c.casefold() for c in p.classes]
    if by == "name":
        return sorted(range(len(names)), key=lambda c: (names[c], c))
    if by != "error":
        raise ValueError(f"unknown class order {by!r}; one of {', '.join(ORDERS)}")
    cm = confusion(p)
    support = cm.sum(axis=1)
    error = np.where(support > 0, 1.0 - np.diag(cm) / np.maximum(support, 1), -1.0)
    return sorted(range(len(names)), key=lambda c: (-error[c], names[c], c))


def report(p: Predictions) -> dict[str, Any]:
    """Every figure, JSON-ready: what evaluation.json holds besides where the data and the model came from."""
    support = per_class(p)
    return {
        "images": len(p),
        "classes": list(p.classes),
        "absent_classes": [c for c, n in zip(p.classes, support["support"], strict=True) if n == 0],
        "accuracy": accuracy(p),
        "top_k_accuracy": {str(k): top_k_accuracy(p, k) for k in range(1, p.k + 1)},
        "per_class": support,
        "averages": averages(p),
        "confusion": confusion(p).astype(int).tolist(),
        "calibration": calibration(p),
        "most_confused": [list(t) for t in most_confused(p)[:20]],
    }
