"""A gallery of images a model predicted: thumbnails in a grid, each with its true class (when it has one), the
predicted class and the confidence; wrong predictions in red.

The model holds a `Predictions` (numbers and paths) and the indices to show, in order; nothing else. The view
lays out thousands of uniform cells at once without asking for any picture, and the delegate paints a cell's
thumbnail when it is ready (`Thumbnails`, decoded off the GUI thread only for the cells painted).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from gui.results.thumbnails import Thumbnails

if TYPE_CHECKING:
    from engine.results.metrics import Predictions

RIGHT, WRONG, UNKNOWN = QColor(46, 125, 50), QColor(198, 40, 40), QColor(90, 90, 90)
INDEX_ROLE = Qt.ItemDataRole.UserRole  # the image's index in the predictions


class GalleryModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.predictions: Predictions | None = None
        self.indices = np.zeros(0, dtype=np.int64)

    def show(self, predictions: Predictions | None, indices: np.ndarray | list[int]) -> None:
        self.beginResetModel()
        self.predictions = predictions
        self.indices = np.asarray(indices, dtype=np.int64)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.indices)

    def image(self, row: int) -> int:
        return int(self.indices[row])

    def path(self, row: int) -> str:
        return self.predictions.paths[self.image(row)]

    def lines(self, row: int) -> tuple[str, str, bool | None]:
        """(true line, predicted line, right or wrong: None without a label) of one cell."""
        p, i = self.predictions, self.image(row)
        label, predicted = int(p.labels[i]), int(p.predicted[i])
        guess = f"{p.classes[predicted]} {p.confidence[i]:.0%}"
        if label < 0:
            return "", guess, None
        return p.classes[label], guess, label == predicted

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.predictions is None:
            return None
        row = index.row()
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(self.path(row)).name
        if role == INDEX_ROLE:
            return self.image(row)
        if role == Qt.ItemDataRole.ToolTipRole:
            true, guess, _ = self.lines(row)
            return f"{self.path(row)}\n" + (f"true: {true}\n" if true else "") + f"predicted: {guess}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            true, guess, _ = self.lines(row)
            return (f"true {true}, " if true else "") + f"predicted {guess}"
        return None


class GalleryDelegate(QStyledItemDelegate):
    """A thumbnail above two lines: the true class, and the predicted one with its confidence."""

    def __init__(self, thumbnails: Thumbnails, parent=None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails

    def cell_size(self, option_font: QFont) -> QSize:
        from PySide6.QtGui import QFontMetrics

        line = QFontMetrics(option_font).height()
        return QSize(self.thumbnails.size + 16, self.thumbnails.size + 2 * line + 12)

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:  # noqa: N802
        return self.cell_size(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        model: GalleryModel = index.model()
        row, rect, side = index.row(), option.rect, self.thumbnails.size
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(rect, option.palette.color(QPalette.ColorRole.Highlight).lighter(170))
        box = QRect(rect.x() + (rect.width() - side) // 2, rect.y() + 4, side, side)
        path = model.path(row)
        pixmap = self.thumbnails.pixmap(path)
        if pixmap is not None:
            scaled = pixmap.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(box, QColor(236, 236, 236))
            if path in self.thumbnails.failed:
                painter.setPen(WRONG)
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, "cannot read")
        true, guess, right = model.lines(row)
        line = option.fontMetrics.height()
        text = QRect(rect.x() + 2, box.bottom() + 4, rect.width() - 4, line)
        elide = option.fontMetrics.elidedText
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        if true:
            painter.drawText(text, Qt.AlignmentFlag.AlignHCenter, elide(true, Qt.TextElideMode.ElideRight, text.width()))
        painter.setPen(UNKNOWN if right is None else RIGHT if right else WRONG)
        text.translate(0, line)
        painter.drawText(text, Qt.AlignmentFlag.AlignHCenter, elide(("→ " if true else "") + guess,
                                                                   Qt.TextElideMode.ElideRight, text.width()))
        painter.restore()


class Gallery(QListView):
    """The grid: uniform cells, left to right and wrapping; with uniform cells Qt lays out 10,000 of them in a few
    milliseconds without asking the model for anything but their number."""

    def __init__(self, thumbnails: Thumbnails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gallery_model = GalleryModel(self)
        self.delegate = GalleryDelegate(thumbnails, self)
        self.setModel(self.gallery_model)
        self.setItemDelegate(self.delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setGridSize(self.delegate.cell_size(self.font()) + QSize(4, 4))
        self.setSpacing(0)
        self.setMinimumSize(self.gridSize().width() + 24, self.gridSize().height() + 8)
        thumbnails.ready.connect(lambda _path: self.viewport().update())

    def show_images(self, predictions: Predictions | None, indices) -> None:
        self.delegate.thumbnails.forget_waiting()  # the images shown until now need no thumbnails any more
        self.gallery_model.show(predictions, indices)
        self.scrollToTop()
