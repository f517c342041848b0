"""The Results tab: a finished run shows it; a cell of the matrix shows exactly its images; images dropped on it
are predicted, with their Grad-CAM; a past run opens with its curves and summary; another folder is evaluated
in the background; and bad input says why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from engine.data import Sample
from engine.results import evaluation
from engine.results import metrics as m
from engine.results.predict import load_run, predict
from engine.runs import catalog
from gui import tasks
from gui.results.window import RESULTS
from tests.gui.results.conftest import wait_loaded
from tests.gui.test_main_window import tiny_project
from tests.imagesets import make_image_folder


def test_a_finished_run_shows_the_results_view(window, qtbot, project_factory):
    window.set_project(tiny_project(project_factory))
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    assert window.shown_run is None and not window.predict_action.isEnabled()
    with qtbot.waitSignal(window.shown_run_changed, timeout=120_000) as shown:
        assert window.start()
    run_dir = Path(window.last_result.run_dir)
    assert shown.args == [run_dir] and window.shown_run == run_dir
    view = window.results_view
    wait_loaded(qtbot, view)
    assert window.centre_tabs.currentIndex() == RESULTS and view.isVisibleTo(window)
    report = json.loads((run_dir / "evaluation.json").read_text())
    assert f"Accuracy <b>{report['accuracy']:.1%}</b>" in view.figures.text() and "macro F1" in view.figures.text()
    assert view.matrix.matrix_model.rowCount() == 2 and view.per_class_model.rowCount() == 2
    counts = view.matrix.matrix_model.matrices["counts"]
    assert counts.tolist() == report["confusion"]
    assert window.predict_action.isEnabled() and window.evaluate_action.isEnabled()
    assert window.plots.val_acc.n == 2  # the live curves stay: nothing was read back over them


def _click(qtbot, table, index) -> None:
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualRect(index).center())


def test_clicking_a_cell_shows_exactly_that_cells_images(window, qtbot, finished_run):
    run_dir, _ = finished_run
    assert window.open_run(run_dir)
    view = window.results_view
    wait_loaded(qtbot, view)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    p = evaluation.read(run_dir).predictions
    cm = m.confusion(p)
    for order in ("By error", "By name"):  # the same cells, wherever they are shown
        view.matrix_order.setCurrentText(order)
        for i in range(len(p.classes)):
            for j in range(len(p.classes)):
                _click(qtbot, view.matrix, view.matrix.index_of(i, j))
                shown = view.gallery.gallery_model
                assert shown.rowCount() == cm[i, j]
                assert [shown.path(r) for r in range(shown.rowCount())] == [p.paths[k] for k in m.cell_members(p, i, j)]
                assert view.gallery_title.text().startswith(f"True {p.classes[i]}, predicted {p.classes[j]}")
    view.matrix_mode.setCurrentIndex(1)  # row %: the diagonal is each class's recall
    model = view.matrix.matrix_model
    recall = m.per_class(p)["recall"]
    for i in range(len(p.classes)):
        assert model.index(model.order.index(i), model.order.index(i)).data() == f"{recall[i]:.0%}"
    table = view.per_class
    table.sortByColumn(3, Qt.SortOrder.DescendingOrder)  # by F1, as a click on its header does
    f1 = m.per_class(p)["f1"]
    shown = [table.model().index(r, 0).data() for r in range(len(p.classes))]
    assert shown == [p.classes[c] for c in sorted(range(len(p.classes)), key=lambda c: -f1[c])]
    assert table.model().index(0, 3).data() == f"{max(f1):.3f}"
    view.show_worst()
    worst = m.worst(p)
    assert view.gallery.gallery_model.indices.tolist() == worst.tolist()


def test_a_pair_and_a_thumbnail_open_the_image_with_its_overlay(window, qtbot, finished_run):
    run_dir, _ = finished_run
    assert window.open_run(run_dir)
    view = window.results_view
    wait_loaded(qtbot, view)
    window.show()
    qtbot.waitExposed(window)
    p = view.predictions()
    pairs = m.most_confused(p)
    assert view.pairs.count() == len(pairs) > 0  # the seeded run gets some wrong
    true, predicted, n = pairs[0]
    assert view.pairs.item(0).data(Qt.ItemDataRole.UserRole) == (true, predicted)
    view.pairs.itemClicked.emit(view.pairs.item(0))
    assert view.gallery.gallery_model.indices.tolist() == m.cell_members(p, true, predicted).tolist()
    assert len(view.gallery.gallery_model.indices) == n
    view.show_cell(int(p.labels[0]), int(p.predicted[0]))
    qtbot.waitUntil(lambda: view.thumbnails.decoded >= 1, timeout=10_000)
    first = view.gallery.gallery_model.index(0)
    _click(qtbot, view.gallery, first)
    detail = view.detail
    assert view.right.currentWidget() is detail and detail.path == view.gallery.gallery_model.path(0)
    assert [name for name, _, _ in detail.bars.rows] == [p.classes[c] for c in p.top_classes[first.data(
        Qt.ItemDataRole.UserRole)]]
    qtbot.waitUntil(lambda: detail.heat is not None, timeout=60_000)
    size = load_run(run_dir).image_size
    assert detail.picture.size == (size, size) and detail.heat.shape == (size, size)
    assert detail.heat.min() >= 0.0 and detail.heat.max() <= 1.0 and detail.image.pixmap is not None
    detail.opacity.setValue(0)  # no overlay: the picture itself
    plain = detail.image.pixmap.toImage()
    detail.cam.setChecked(False)
    assert detail.image.pixmap.toImage() == plain
    detail.back_button.click()
    assert view.right.currentIndex() == 0


def _drop(widget, paths: list[Path]) -> bool:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def test_a_dropped_image_is_predicted_in_the_background(window, qtbot, finished_run, tmp_path):
    run_dir, _ = finished_run
    assert window.open_run(run_dir)
    view = window.results_view
    wait_loaded(qtbot, view)
    new = make_image_folder(tmp_path / "new", per_class=1, classes=("square",), seed=11) / "square" / "000.png"
    assert not _drop(view, [tmp_path / "notes.txt"])  # not an image: refused
    assert _drop(view, [new])
    assert tasks.running()  # predicted in a task; the window goes on
    qtbot.waitUntil(lambda: view.tried is not None, timeout=60_000)
    expected, _ = predict(load_run(run_dir), [Sample(str(new), -1)])
    tried = view.tried
    assert tried.paths == [str(new)] and (tried.top_classes == expected.top_classes).all()
    assert np.allclose(tried.top_probs, expected.top_probs, atol=1e-6)
    assert view.gallery.gallery_model.rowCount() == 1 and view.right.currentWidget() is view.detail
    assert view.detail.bars.rows[0][0] == tried.classes[int(tried.predicted[0])]
    qtbot.waitUntil(lambda: view.detail.heat is not None, timeout=60_000)
    assert view.detail.path == str(new)


def test_a_folder_without_images_says_so(window, qtbot, finished_run, tmp_path):
    run_dir, _ = finished_run
    assert window.open_run(run_dir)
    wait_loaded(qtbot, window.results_view)
    (tmp_path / "empty").mkdir()
    assert _drop(window.results_view, [tmp_path / "empty"])
    qtbot.waitUntil(lambda: window.error_box is not None, timeout=30_000)
    assert "no usable images" in window.error_box.text() and window.results_view.tried is None


def test_opening_a_past_run_restores_its_curves_and_summary(window, qtbot, finished_run):
    run_dir, _ = finished_run
    record = catalog.read_run(run_dir)
    epochs = catalog.history(run_dir, record.summary)
    with qtbot.waitSignal(window.shown_run_changed) as shown:
        assert window.open_run(run_dir)
    assert shown.args == [run_dir]
    wait_loaded(qtbot, window.results_view)
    plots = window.plots
    assert plots.val_acc.n == plots.train_acc.n == len(epochs) == 3
    assert list(plots.val_acc.y[:3]) == pytest.approx([100 * e.val_accuracy for e in epochs])
    assert plots.val_loss.n == 3 and list(plots.val_loss.x[:3]) == [record.steps_per_epoch * k for k in (1, 2, 3)]
    assert window.summary.isVisibleTo(window) and f"{record.best_val_accuracy:.1%}" in window.summary.label.text()
    assert window.results_view.run_title.text().startswith(f"Run {run_dir.name} · finished")
    assert not window.dirty  # the project being edited is not touched


def test_what_is_not_a_run_is_refused_with_a_message(window, tmp_path):
    before = window.shown_run
    assert not window.open_run(tmp_path)
    assert window.error_box is not None and "not a run folder" in window.error_box.text()
    assert window.shown_run == before


def _open_copy(window, qtbot, run_dir: Path, copy: Path, unevaluated: bool = False):
    """A copy of the finished run (this test writes into it), shown in the Results tab; its view."""
    shutil.copytree(run_dir, copy)
    if unevaluated:  # as a run stopped by its user
        for name in ("evaluation.json", "predictions.csv"):
            (copy / name).unlink()
    assert window.open_run(copy)
    wait_loaded(qtbot, window.results_view)
    return window.results_view


def test_another_folder_is_evaluated_in_the_background_and_shown(window, qtbot, finished_run, tmp_path):
    copy = tmp_path / "copy"
    view = _open_copy(window, qtbot, finished_run[0], copy)
    other = make_image_folder(tmp_path / "more", per_class=2, seed=5)
    assert view.evaluate(str(other))
    assert view.evaluating.isVisibleTo(view) and not view.evaluate(str(other))  # one at a time
    qtbot.waitUntil(lambda: view.evaluating.task is None, timeout=60_000)
    wait_loaded(qtbot, view)
    assert view.shown.evaluation.report["split"] == "other" and view.shown.evaluation.report["images"] == 6
    assert view.evaluation_choice.count() == 2 and "more" in view.evaluation_choice.currentText()
    assert len(list((copy / "evaluations").glob("more-*/predictions.csv"))) == 1
    view.evaluation_choice.setCurrentIndex(0)
    view.evaluation_choice.activated.emit(0)
    wait_loaded(qtbot, view)
    assert view.shown.evaluation.report["split"] == "validation"


def test_a_run_not_evaluated_yet_is_evaluated_with_one_click(window, qtbot, finished_run, tmp_path):
    copy = tmp_path / "stopped"
    view = _open_copy(window, qtbot, finished_run[0], copy, unevaluated=True)
    assert view.shown.evaluation is None and "not been evaluated" in view.figures.text()
    assert view.evaluate_own.isVisibleTo(view) and view.matrix.matrix_model.rowCount() == 0
    view.evaluate_own.click()
    qtbot.waitUntil(lambda: view.evaluating.task is None, timeout=60_000)
    wait_loaded(qtbot, view)
    report = json.loads((copy / "evaluation.json").read_text())
    assert view.shown.evaluation.report["split"] == report["split"] == "validation"
    assert not view.evaluate_own.isVisibleTo(view) and view.matrix.matrix_model.rowCount() == 3


def test_a_cancelled_evaluation_writes_nothing_and_says_so(window, qtbot, finished_run, tmp_path):
    copy = tmp_path / "copy"
    view = _open_copy(window, qtbot, finished_run[0], copy)
    other = make_image_folder(tmp_path / "more", per_class=4, seed=6)
    assert view.evaluate(str(other))
    view.evaluating.cancel_button.click()
    qtbot.waitUntil(lambda: view.evaluating.task is None, timeout=60_000)
    assert window.error_box is not None and "nothing was written" in window.error_box.text()
    assert not (copy / "evaluations").exists() and view.evaluating.isHidden()
