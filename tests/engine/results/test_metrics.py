"""The figures of a set of predictions against scikit-learn and torchmetrics, on the notes' seeded set (N=1000,
C=7, a class missing from it), and the views the window draws: cells, worst mistakes, most confused pairs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, top_k_accuracy_score
from torchmetrics.functional import classification as tm

from engine.results import metrics as m
from engine.results.metrics import Predictions

C, K = 7, 5
ROOT = Path(__file__).resolve().parents[3]


def _seeded(missing: int | None = None, n: int = 1000) -> tuple[Predictions, np.ndarray]:
    """The notes' set: logits normal x 2, then labels, +1.5 on the true class; `missing`: a class relabelled away."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(n, C)) * 2
    y = rng.integers(0, C, n)
    if missing is not None:
        y[y == missing] = (missing + 1) % C
    logits[np.arange(n), y] += 1.5
    probs = torch.softmax(torch.as_tensor(logits), 1).numpy()
    top = np.argsort(-probs, axis=1, kind="stable")[:, :K]
    loss = -np.log(probs[np.arange(n), y])
    return Predictions([f"c{i}" for i in range(C)], [f"img{i}.png" for i in range(n)], y, top,
                       np.take_along_axis(probs, top, 1), loss), probs


def test_matrix_per_class_and_top_k_equal_scikit_learn_with_a_class_missing():
    p, probs = _seeded(missing=3)
    y, yhat = p.labels, probs.argmax(1)
    assert (p.predicted == yhat).all() and 3 not in set(y.tolist())
    assert (m.confusion(p) == confusion_matrix(y, yhat, labels=range(C))).all()
    for normalize in ("true", "pred", "all"):  # the missing class's empty row stays 0, as scikit-learn's does
        theirs = confusion_matrix(y, yhat, labels=range(C), normalize=normalize)
        assert np.allclose(m.confusion(p, normalize), theirs, atol=1e-12)
    prec, rec, f1, sup = precision_recall_fscore_support(y, yhat, labels=range(C), zero_division=0)
    got = m.per_class(p)
    assert np.allclose(got["precision"], prec, atol=1e-12) and np.allclose(got["recall"], rec, atol=1e-12)
    assert np.allclose(got["f1"], f1, atol=1e-12) and got["support"] == sup.tolist() and got["support"][3] == 0
    for k in range(1, K + 1):
        assert m.top_k_accuracy(p, k) == top_k_accuracy_score(y, probs, k=k, labels=range(C))
    report = m.report(p)
    assert report["absent_classes"] == ["c3"] and report["images"] == 1000
    assert report["per_class"]["f1"][3] == 0


def test_top_k_on_the_notes_set_is_the_notes_figure():
    p, _ = _seeded()
    assert m.top_k_accuracy(p, 1) == pytest.approx(0.3430, abs=1e-12)
    assert m.top_k_accuracy(p, 3) == pytest.approx(0.6950, abs=1e-12)
    with pytest.raises(ValueError, match="top-6"):
        m.top_k_accuracy(p, 6)


def test_expected_calibration_error_equals_torchmetrics():
    p, probs = _seeded()
    theirs = tm.multiclass_calibration_error(torch.as_tensor(probs, dtype=torch.float32),
                                             torch.as_tensor(p.labels), num_classes=C, n_bins=15, norm="l1")
    cal = m.calibration(p)
    assert cal["ece"] == pytest.approx(float(theirs), abs=1e-6)
    assert cal["ece"] == pytest.approx(0.2675918732, abs=1e-6)  # the notes' figure
    assert sum(b["count"] for b in cal["bins"]) == 1000 and len(cal["bins"]) == 15


def test_macro_averages_leave_out_a_class_the_data_lacks():
    p, probs = _seeded(missing=3)
    present = [c for c in range(C) if c != 3]
    got = m.averages(p)
    for average in ("macro", "weighted"):
        theirs = precision_recall_fscore_support(p.labels, probs.argmax(1), labels=present, average=average,
                                                 zero_division=0)[:3]
        assert [got[average][k] for k in ("precision", "recall", "f1")] == pytest.approx(theirs, abs=1e-12)


def test_every_image_is_in_one_cell_and_cells_go_most_confident_first():
    p, _ = _seeded()
    total = 0
    for i in range(C):
        for j in range(C):
            members = m.cell_members(p, i, j)
            assert (p.labels[members] == i).all() and (p.predicted[members] == j).all()
            assert (np.diff(p.confidence[members]) <= 0).all()
            total += len(members)
    assert total == len(p)


def test_worst_mistakes_come_highest_loss_first_and_pairs_most_first():
    p, _ = _seeded()
    worst = m.worst(p)
    assert len(worst) == int((p.labels != p.predicted).sum()) and (np.diff(p.losses[worst]) <= 0).all()
    pairs = m.most_confused(p)
    cm = m.confusion(p)
    assert all(cm[i, j] == n and i != j for i, j, n in pairs)
    assert [n for *_, n in pairs] == sorted((n for *_, n in pairs), reverse=True)
    assert sum(n for *_, n in pairs) == len(worst)


def test_the_predictions_keep_numbers_and_paths_only():
    p, _ = _seeded(n=10_000)
    arrays = p.labels.nbytes + p.top_classes.nbytes + p.top_probs.nbytes + p.losses.nbytes
    assert arrays == 10_000 * (8 + 8 * K + 8 * K + 8)  # O(N * k): no image, no (N, C) array


def test_classes_order_by_name_or_by_error_with_an_absent_class_last():
    p, _ = _seeded(missing=3)
    p.classes = ["b", "A", "c", "d", "e", "f", "g"]
    assert m.class_order(p, "name") == [1, 0, 2, 3, 4, 5, 6]
    by_error = m.class_order(p, "error")
    recall = np.array(m.per_class(p)["recall"])
    shown = [c for c in by_error if c != 3]
    assert by_error[-1] == 3  # no images: nothing to get wrong
    assert (np.diff(1 - recall[shown]) <= 0).all() and sorted(by_error) == list(range(C))
    with pytest.raises(ValueError, match="unknown class order"):
        m.class_order(p, "size")


def test_a_run_and_its_figures_never_import_scikit_learn():
    """Importing scikit-learn costs 0.85-1.1 s of CPU: every run paid it at its final evaluation, the whole of
    what a run cost beyond a bare loop's (bench/peers.py). The figures are counted with numpy instead."""
    code = ("import sys\n"
            "import numpy as np\n"
            "import engine.cli, engine.runs.folder, engine.results.evaluation, engine.results.metrics as m\n"
            "p = m.Predictions(['a', 'b'], ['x.png'], *map(np.array, ([0], [[0, 1]], [[0.9, 0.1]], [0.1])))\n"
            "m.report(p), m.confusion(p, 'true')\n"
            "print('sklearn' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]
