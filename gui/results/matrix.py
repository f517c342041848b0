"""The confusion matrix as a heat map: rows are the true classes, columns the predicted ones; each cell shows its
count, or its share of the row (recall on the diagonal) or of the column (precision). The diagonal is blue,
the mistakes red, deeper for a larger share of the row (of the column when showing precision). Clicking a
cell (or Return on it) says which (true, predicted) pair it is; the matrices and the class order are the
engine's (`engine.results.metrics`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

MODES = (("counts", "Counts"), ("recall", "Row % (recall)"), ("precision", "Column % (precision)"))
RIGHT, WRONG, WHITE = np.array([33, 102, 172]), np.array([178, 24, 43]), np.array([255, 255, 255])
CELL_ROLE = Qt.ItemDataRole.UserRole  # (true class, predicted class) of a cell


TINT = 0.12  # the least colour of a cell with any image: one mistake in a thousand still shows


def shade(value: float, diagonal: bool, empty: bool = False) -> QColor:
    """White for an empty cell, then from a tint to the full colour at 1: blue on the diagonal, red off it."""
    base = RIGHT if diagonal else WRONG
    share = 0.0 if empty else TINT + (1 - TINT) * float(np.clip(value, 0.0, 1.0))
    mixed = WHITE + (base - WHITE) * share
    return QColor(*(int(round(c)) for c in mixed))


class ConfusionModel(QAbstractTableModel):
    """`show(classes, matrices, order)`: matrices are {"counts", "recall", "precision"} (C x C) in class order;
    `order` the class indices to show, first to last, for both rows and columns."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.matrices: dict[str, np.ndarray] = {}
        self.order: list[int] = []
        self.mode = "counts"

    def show(self, classes: list[str], matrices: dict[str, np.ndarray], order: list[int]) -> None:
        self.beginResetModel()
        self.classes, self.matrices, self.order = list(classes), matrices, list(order)
        self.endResetModel()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if self.order:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.order) - 1, len(self.order) - 1))

    def set_order(self, order: list[int]) -> None:
        self.beginResetModel()
        self.order = list(order)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.order)

    columnCount = rowCount  # noqa: N815 (Qt's name): the matrix is square

    def cell(self, index: QModelIndex) -> tuple[int, int]:
        return self.order[index.row()], self.order[index.column()]

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        i, j = self.cell(index)
        count = int(self.matrices["counts"][i, j])
        share = float(self.matrices["precision" if self.mode == "precision" else "recall"][i, j])
        if role == Qt.ItemDataRole.DisplayRole:
            return str(count) if self.mode == "counts" else f"{share:.0%}"
        if role == Qt.ItemDataRole.BackgroundRole:
            return shade(share, i == j, empty=count == 0)
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor("white") if share > 0.5 else QColor(150, 150, 150) if count == 0 else QColor("black")
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            recall, precision = self.matrices["recall"][i, j], self.matrices["precision"][i, j]
            return (f"true {self.classes[i]}, predicted {self.classes[j]}: {count} image{'s' * (count != 1)} "
                    f"({recall:.0%} of the {self.classes[i]} images, {precision:.0%} of the {self.classes[j]} "
                    "predictions); click to see them")
        if role == CELL_ROLE:
            return i, j
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if not 0 <= section < len(self.order):
            return None
        name = self.classes[self.order[section]]
        if role == Qt.ItemDataRole.DisplayRole:
            return name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{'predicted' if orientation == Qt.Orientation.Horizontal else 'true'} class: {name}"
        return None


class CellDelegate(QStyledItemDelegate):
    """A cell in its own colour, a chosen cell framed (a selection's fill would hide the colour)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        chosen = bool(option.state & QStyle.StateFlag.State_Selected)
        option.state &= ~QStyle.StateFlag.State_Selected
        option.state &= ~QStyle.StateFlag.State_HasFocus
        super().paint(painter, option, index)
        if chosen:
            painter.save()
            painter.setPen(QPen(QColor(20, 20, 20), 3))
            painter.drawRect(option.rect.adjusted(1, 1, -2, -2))
            painter.restore()


class ConfusionView(QTableView):
    """The matrix; `cell_chosen(true, predicted)` when a cell is clicked or activated (Return)."""

    cell_chosen = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix_model = ConfusionModel(self)
        self.setModel(self.matrix_model)
        self.setItemDelegate(CellDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setWordWrap(False)
        fm = self.fontMetrics()
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            header.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.horizontalHeader().setDefaultSectionSize(fm.horizontalAdvance("classname") + 12)  # "100%" and a name
        self.verticalHeader().setDefaultSectionSize(fm.height() + 14)
        self.verticalHeader().setMaximumWidth(fm.horizontalAdvance("M" * 12))
        self.clicked.connect(self._chosen)
        self.activated.connect(self._chosen)

    def sizeHint(self) -> QSize:  # noqa: N802
        """The whole matrix with its headers (what its side of the Results view asks for)."""
        frame = 2 * self.frameWidth()
        return QSize(self.verticalHeader().sizeHint().width() + self.horizontalHeader().length() + frame + 2,
                     self.horizontalHeader().sizeHint().height() + self.verticalHeader().length() + frame + 2)

    def _chosen(self, index: QModelIndex) -> None:
        if index.isValid():
            self.cell_chosen.emit(*self.matrix_model.cell(index))

    def index_of(self, true: int, predicted: int) -> QModelIndex:
        """The model index of the cell (true, predicted) as ordered now."""
        order = self.matrix_model.order
        return self.matrix_model.index(order.index(true), order.index(predicted))
