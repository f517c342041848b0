"""The Results view: what the shown run's model gets right and wrong, and trying it on new images.

Above, the run and its evaluation (its own held-out split, or another folder it was evaluated on) with the
overall figures; left, the confusion matrix (counts, row % or column %; classes by name or by error), the
per-class table and the most confused pairs; right, a gallery: a cell's images, the worst mistakes, or images
dropped on the view (tried on the model); clicking one shows it large with its Grad-CAM overlay.

A run is read in the background (`reading.load`: small files, and predictions.csv) and only numbers and paths
are kept; every figure, matrix, order and list is the engine's (`engine.results.metrics`, `engine.runs.catalog`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.flow_layout import FlowLayout
from gui.naming import named
from gui.results.evaluating import Evaluating
from gui.results.gallery import INDEX_ROLE, Gallery
from gui.results.image_view import ImageDetail
from gui.results.inference import RunModel
from gui.results.matrix import MODES, ConfusionView
from gui.results.reading import Shown, load
from gui.results.tables import PerClassModel, figures
from gui.results.thumbnails import Thumbnails
from gui.tasks import Latest
from gui.text import ElidedLabel, WrappingLabel

MATRIX_SHARE = 0.6  # of the view's width or height, at most, for the matrix side
NO_RUN = "No run shown yet. Train the project, or open a past run (Run > Open Run...)."


class ResultsView(QWidget):
    error = Signal(str, str)        # a title and a message for the window to show
    loaded = Signal(object)         # a `Shown` is on screen
    open_run_requested = Signal()   # the empty view's "Open Run..." button

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.shown: Shown | None = None
        self.folder: Path | None = None
        self.run_model: RunModel | None = None
        self._retired: list[RunModel] = []
        self.tried = None  # Predictions of the images tried on the model (dropped, or File > Predict)
        self._unsized = True  # the matrix and the gallery are to share the room anew (a run shown, a resize)
        self._loading = Latest(self, "thaw-results")
        self._loading.returned.connect(self._show)
        self._loading.errored.connect(lambda exc: self.error.emit("Cannot show the run", str(exc)))
        self.thumbnails = Thumbnails(parent=self)
        self._build()

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        self.pages = QStackedWidget()
        empty = QWidget()
        lay = QVBoxLayout(empty)
        self.empty_label = WrappingLabel(NO_RUN)
        self.open_button = named(QPushButton("Open Run..."), "openRunButton", "Open a past run")
        self.open_button.clicked.connect(self.open_run_requested)
        lay.addStretch(1)
        lay.addWidget(self.empty_label)
        lay.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addStretch(2)
        self.pages.addWidget(empty)
        self.pages.addWidget(self._content())
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(self.pages)

    def _content(self) -> QWidget:
        self.run_title = ElidedLabel(mode=Qt.TextElideMode.ElideRight)
        self.run_title.setStyleSheet("font-weight: bold;")
        self.evaluation_choice = named(QComboBox(), "evaluationChoice", "Evaluation shown")
        self.evaluation_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.evaluation_choice.setMinimumContentsLength(28)
        self.evaluation_choice.activated.connect(self._evaluation_chosen)
        self.evaluate_button = named(QPushButton("Evaluate on Another Folder..."), "evaluateOther",
                                     "Evaluate on another folder")
        self.evaluate_own = named(QPushButton("Evaluate"), "evaluateOwn", "Evaluate on the run's held-out images")
        self.evaluate_own.clicked.connect(lambda: self.evaluate(None))
        self.try_button = named(QPushButton("Try Images..."), "tryImages", "Try the model on images")
        self.export_button = named(QPushButton("Export..."), "exportShownRun", "Export the run's model")
        self.export_button.setToolTip("Export this run's model (ONNX, .pt2, safetensors), verified against PyTorch")
        row = QWidget()
        flow = FlowLayout(row, spacing=6)
        for w in (self.evaluation_choice, self.evaluate_own, self.evaluate_button):
            flow.addWidget(w)
        self.figures = WrappingLabel()
        self.figures.setTextFormat(Qt.TextFormat.RichText)
        self.evaluating = Evaluating()
        self.evaluating.done.connect(self._evaluated)
        self.evaluating.failed.connect(lambda msg: self.error.emit("Evaluation failed", msg))

        self.matrix = named(ConfusionView(), "confusionMatrix", "Confusion matrix")
        self.matrix.cell_chosen.connect(self.show_cell)
        self.matrix_mode = named(QComboBox(), "matrixMode", "Confusion matrix values")
        self.matrix_mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.matrix_mode.setMinimumContentsLength(8)
        for key, label in MODES:
            self.matrix_mode.addItem(label, key)
        self.matrix_mode.currentIndexChanged.connect(
            lambda _i: self.matrix.matrix_model.set_mode(self.matrix_mode.currentData()))
        self.matrix_order = named(QComboBox(), "matrixOrder", "Order of the classes")
        self.matrix_order.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.matrix_order.setMinimumContentsLength(6)
        self.matrix_order.addItem("By name", "name")
        self.matrix_order.addItem("By error", "error")
        self.matrix_order.currentIndexChanged.connect(lambda _i: self._order())
        matrix_page = QWidget()
        lay = QVBoxLayout(matrix_page)
        lay.setContentsMargins(2, 2, 2, 2)
        controls = QHBoxLayout()
        controls.addWidget(self.matrix_mode, 1)
        controls.addWidget(self.matrix_order, 1)
        lay.addLayout(controls)
        self.axes = QLabel("Rows: true class · columns: predicted class · click a cell")
        self.axes.setWordWrap(True)
        lay.addWidget(self.axes)
        lay.addWidget(self.matrix, 1)

        self.per_class_model = PerClassModel(self)
        self.per_class = named(QTableView(), "perClassTable", "Per-class precision, recall and F1")
        self.per_class.setModel(self.per_class_model)
        self.per_class.setSortingEnabled(True)
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.verticalHeader().hide()
        self.pairs = named(QListWidget(), "confusedPairs", "Most confused pairs")
        self.pairs.itemActivated.connect(self._pair_chosen)
        self.pairs.itemClicked.connect(self._pair_chosen)
        self.tabs = named(QTabWidget(), "resultsTabs", "Results")
        self.tabs.tabBar().setObjectName("resultsTabBar")
        self.tabs.tabBar().setAccessibleName("Results sections")
        self.tabs.addTab(matrix_page, "Matrix")
        self.tabs.addTab(self.per_class, "Per class")
        self.tabs.addTab(self.pairs, "Confused pairs")

        self.gallery = named(Gallery(self.thumbnails), "resultsGallery", "Images")
        self.gallery.clicked.connect(self._image_chosen)
        self.gallery.activated.connect(self._image_chosen)
        self.gallery_title = WrappingLabel()
        self.worst_button = named(QPushButton("Worst Mistakes"), "showWorst", "Show the worst mistakes")
        self.worst_button.setToolTip("The images predicted wrong, highest loss first (often a wrong label)")
        self.worst_button.clicked.connect(self.show_worst)
        gallery_page = QWidget()
        lay = QVBoxLayout(gallery_page)
        lay.setContentsMargins(2, 2, 2, 2)
        head = QHBoxLayout()
        head.addWidget(self.gallery_title, 1)
        head.addWidget(self.worst_button, 0, Qt.AlignmentFlag.AlignTop)
        head.addWidget(self.try_button, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(head)
        lay.addWidget(self.gallery, 1)
        self.detail = ImageDetail()
        self.detail.back.connect(lambda: self._right(0))
        self.detail.wanted.connect(self._want_picture)
        self.right = QStackedWidget()
        self.right.addWidget(gallery_page)
        self.right.addWidget(self.detail)
        # The gallery's height, not the image's: one above the other, the image takes the matrix's room too.
        self.right.setMinimumHeight(gallery_page.minimumSizeHint().height())

        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.setChildrenCollapsible(False)
        self.split.setMinimumWidth(160)  # never widens the window: too narrow side by side, it stacks (`_arrange`)
        self.split.addWidget(self.tabs)
        self.split.addWidget(self.right)
        content = QWidget()
        lay = QVBoxLayout(content)
        lay.setContentsMargins(0, 0, 0, 0)
        title = QHBoxLayout()
        title.addWidget(self.run_title, 1)
        title.addWidget(self.export_button)
        lay.addLayout(title)
        lay.addWidget(row)
        lay.addWidget(self.figures)
        lay.addWidget(self.evaluating)
        lay.addWidget(self.split, 1)
        return content

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._arrange()

    def _matrix_room(self, width: int) -> QSize:
        """What the matrix side needs to show the whole matrix with its controls (at most `width` wide)."""
        table, spacing = self.matrix.sizeHint(), self.matrix.parentWidget().layout().spacing()
        w = min(width, max(table.width(), self.matrix_mode.sizeHint().width() + self.matrix_order.sizeHint().width()
                           + spacing) + 12)
        h = (table.height() + self.matrix_mode.sizeHint().height() + self.axes.heightForWidth(w - 12)
             + 2 * spacing + self.tabs.tabBar().sizeHint().height() + 14)
        return QSize(w, h)

    def _arrange(self, resize: bool = False) -> None:
        """The matrix and the gallery side by side, or one above the other: whichever leaves the gallery more
        room once the matrix has what it needs. One above the other, the image shown large takes the matrix's
        room too (Back brings it back)."""
        self._unsized = self._unsized or resize
        w, h = self.split.width(), self.split.height()
        if w <= 0 or h <= 0 or not self.split.isVisible():
            return
        need = self._matrix_room(round(w * MATRIX_SHARE))
        need.setHeight(min(need.height(), round(h * MATRIX_SHARE)))
        fits = w >= self.tabs.minimumSizeHint().width() + self.right.minimumSizeHint().width() + 8
        wide = fits and (w - need.width()) * h >= w * (h - need.height())
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if orientation != self.split.orientation() or self._unsized:
            self._unsized = False
            self.split.setOrientation(orientation)
            first = need.width() if wide else need.height()
            self.split.setSizes([first, (w if wide else h) - first])
        self.tabs.setVisible(wide or self.right.currentIndex() == 0)

    def _right(self, page: int) -> None:
        """The gallery (0) or the image shown large (1)."""
        self.right.setCurrentIndex(page)
        self._arrange()

    # ------------------------------------------------------------------ a run

    def show_run(self, folder: str | Path, evaluation: str | Path | None = None) -> None:
        """Show the run in `folder` (read in the background; `loaded` once it is on screen)."""
        folder = Path(folder)
        if folder != self.folder:
            if self.run_model is not None:
                self._retire(self.run_model)
            self.run_model = None
            self.tried = None
        self.folder = folder
        self._loading.start(lambda _state: load(folder, Path(evaluation) if evaluation else None))

    def is_loading(self) -> bool:
        return self._loading.is_busy()

    def _show(self, shown: Shown) -> None:
        self.shown = shown
        record, done = shown.record, shown.evaluation
        self.pages.setCurrentIndex(1)
        arch = record.settings.get("model.arch", "")
        self.run_title.setText(f"Run {record.name} · {record.status} · {arch}")
        self.evaluation_choice.clear()
        for e in shown.evaluations:
            self.evaluation_choice.addItem(e.describe(), str(e.folder))
        if done is not None:
            self.evaluation_choice.setCurrentIndex(max(0, self.evaluation_choice.findData(str(done.folder))))
        self.evaluation_choice.setVisible(bool(shown.evaluations))
        self.evaluate_own.setVisible(record.evaluation is None and record.has_model)
        for button in (self.evaluate_button, self.try_button, self.export_button):
            button.setEnabled(record.has_model)
        self.figures.setText(figures(done.report) if done is not None else self._why_no_evaluation(record))
        self.per_class_model.show(done.report if done is not None else None)
        self.pairs.clear()
        if done is not None:
            p = done.predictions
            names = p.classes
            for true, predicted, n in done.report.get("most_confused", []):
                item = QListWidgetItem(f"{names[true]} → {names[predicted]}: {n} image{'s' * (n != 1)}")
                item.setData(Qt.ItemDataRole.UserRole, (true, predicted))
                self.pairs.addItem(item)
            self.matrix.matrix_model.show(names, shown.matrices, shown.orders[self.matrix_order.currentData()])
        else:
            self.matrix.matrix_model.show([], {}, [])
        self.worst_button.setEnabled(done is not None)
        self._arrange(resize=True)
        if self.tried is None:
            self.show_worst() if done is not None else self._gallery(None, [], "Drop images here to try the model.")
        self.loaded.emit(shown)

    def _why_no_evaluation(self, record) -> str:
        if not record.has_model:
            return "This run has no model: it ended before its first epoch was kept."
        return ("This run's model has not been evaluated yet (a stopped run is not): <b>Evaluate</b> it on its "
                "held-out images, or on another folder.")

    def _evaluation_chosen(self, _index: int) -> None:
        if self.folder is not None and self.evaluation_choice.currentData():
            self.tried = None
            self.show_run(self.folder, self.evaluation_choice.currentData())

    def _order(self) -> None:
        if self.shown is not None and self.shown.orders:
            self.matrix.matrix_model.set_order(self.shown.orders[self.matrix_order.currentData()])

    def predictions(self):
        return self.shown.evaluation.predictions if self.shown and self.shown.evaluation else None

    # ------------------------------------------------------------------ the gallery

    def _gallery(self, predictions, indices, title: str) -> None:
        self.gallery.show_images(predictions, indices)
        self.gallery_title.setText(title)
        self._right(0)

    def show_cell(self, true: int, predicted: int) -> None:
        """The images of the matrix's cell (true, predicted), most confident first."""
        from engine.results.metrics import cell_members

        p = self.predictions()
        if p is None:
            return
        members = cell_members(p, true, predicted)
        what = "right" if true == predicted else "wrong"
        self.tried = None
        self._gallery(p, members, f"True {p.classes[true]}, predicted {p.classes[predicted]} ({what}): "
                                  f"{len(members):,} image{'s' * (len(members) != 1)}, most confident first")

    def show_worst(self) -> None:
        from engine.results.metrics import worst

        p = self.predictions()
        if p is None:
            return
        wrong = worst(p)
        self.tried = None
        title = (f"The worst mistakes: {len(wrong):,} image{'s' * (len(wrong) != 1)} predicted wrong, highest loss "
                 "first" if len(wrong) else "No mistakes: every image is predicted right.")
        self._gallery(p, wrong, title)

    def _pair_chosen(self, item: QListWidgetItem) -> None:
        true, predicted = item.data(Qt.ItemDataRole.UserRole)
        self.show_cell(true, predicted)

    def _image_chosen(self, index: QModelIndex) -> None:
        if index.isValid():
            self.show_image(self.gallery.gallery_model.predictions, int(index.data(INDEX_ROLE)))

    def show_image(self, p, i: int) -> None:
        """Image `i` of predictions `p` large, with its top-5 and the Grad-CAM overlay."""
        top = [(int(c), p.classes[int(c)], float(q)) for c, q in zip(p.top_classes[i], p.top_probs[i], strict=True)]
        label = int(p.labels[i])
        self.detail.show_image(p.paths[i], p.classes[label] if label >= 0 else None, top, label)
        self._right(1)

    # ------------------------------------------------------------------ the model at work

    def _model(self) -> RunModel | None:
        if self.folder is None or self.shown is None or not self.shown.record.has_model:
            return None
        if self.run_model is None:
            self.run_model = model = RunModel(self.folder, self)
            model.explained.connect(self.detail.show_picture)
            model.predicted.connect(self._tried)
            model.failed.connect(self._model_failed)
        return self.run_model

    def _want_picture(self, path: str, target: int, cam: bool) -> None:
        model = self._model()
        if model is None:
            self.detail.show_failure("This run has no model to show the picture with.")
            return
        model.explain(path, target, cam)

    def try_images(self, paths: list[str]) -> bool:
        """Predict the images (files or folders) with the shown run's model, in the background."""
        model = self._model()
        if model is None:
            self.error.emit("Cannot try images", "Show a run with a model first (Run > Open Run..., or train one).")
            return False
        self._gallery(None, [], f"Predicting {len(paths)} dropped item{'s' * (len(paths) != 1)}...")
        model.predict([str(p) for p in paths])
        return True

    def _tried(self, value) -> None:
        predictions, problems = value
        self.tried = predictions
        skipped = f" ({len(problems)} could not be read: {problems[0][0]}: {problems[0][1]})" if problems else ""
        self._gallery(predictions, np.arange(len(predictions)),
                      f"Tried on the model: {len(predictions):,} image{'s' * (len(predictions) != 1)}{skipped}")
        if len(predictions):
            self.show_image(predictions, 0)

    def _model_failed(self, kind: str, message: str) -> None:
        if kind == "explain":
            self.detail.show_failure(f"Cannot show the picture: {message}")
        else:
            self._gallery(None, [], "Drop images here to try the model.")
            self.error.emit("Cannot try the images", message)

    def _retire(self, model: RunModel) -> None:
        """The model of a run no longer shown: a job still running is left to end (its answer ignored) and
        joined at the latest by `shutdown`."""
        model.closed = True
        self._retired = [m for m in [*self._retired, model] if m.is_busy()]

    # ------------------------------------------------------------------ evaluating

    def evaluate(self, source: str | None) -> bool:
        """Evaluate the shown run's model on `source` (None: its own held-out split), in the background."""
        if self.folder is None or self.shown is None or not self.shown.record.has_model:
            return False
        return self.evaluating.start(self.folder, source)

    def _evaluated(self, folder: Path | None) -> None:
        if folder is None:
            self.error.emit("Evaluation cancelled", "The evaluation was cancelled; nothing was written.")
        elif self.folder is not None:
            self.tried = None
            self.show_run(self.folder, folder)

    # ------------------------------------------------------------------ dropped images

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if self._model() is not None and any(_image_or_folder(u.toLocalFile()) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if _image_or_folder(u.toLocalFile())]
        if paths and self.try_images(paths):
            event.acceptProposedAction()

    def shutdown(self) -> None:
        """Wait for every task this view started (the window is closing)."""
        self._loading.shutdown()
        self.thumbnails.shutdown()
        self.evaluating.shutdown()
        for model in [*self._retired, *([self.run_model] if self.run_model else [])]:
            model.shutdown()


def _image_or_folder(path: str) -> bool:
    """Whether a dropped path is something to try the model on: an image file (by its suffix) or a folder."""
    from engine.data import IMAGE_EXTENSIONS

    p = Path(path)
    return bool(path) and (p.is_dir() or p.suffix.lower() in IMAGE_EXTENSIONS)
