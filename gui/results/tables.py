"""The per-class table (precision, recall, F1, support; sortable by any column) and the line of overall figures,
both from an evaluation's report (`engine.results.metrics.report`), as written in evaluation.json."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

COLUMNS = ("Class", "Precision", "Recall", "F1", "Support")


def figures(report: dict[str, Any]) -> str:
    """The overall figures in one line of rich text: accuracy, top-k, macro F1, calibration error."""
    def pct(x: Any) -> str:
        return f"{x:.1%}" if isinstance(x, (int, float)) else "-"

    top = report.get("top_k_accuracy") or {}
    ks = [k for k in top if k != "1"]
    macro = ((report.get("averages") or {}).get("macro") or {}).get("f1")
    ece = (report.get("calibration") or {}).get("ece")
    bins = len((report.get("calibration") or {}).get("bins") or [])
    parts = [f"Accuracy <b>{pct(report.get('accuracy'))}</b>"]
    if ks:
        parts.append(f"top-{ks[-1]} <b>{pct(top[ks[-1]])}</b>")
    parts.append(f"macro F1 <b>{macro:.3f}</b>" if isinstance(macro, (int, float)) else "macro F1 -")
    if isinstance(ece, (int, float)):
        parts.append(f"calibration error <b>{ece:.3f}</b> ({bins} bins)")
    split = report.get("split", "")
    where = f"the {split} split" if split in ("test", "validation") else str(report.get("source", ""))
    absent = report.get("absent_classes") or []
    note = f" · no images of {', '.join(absent)}" if absent else ""
    return " · ".join(parts) + f" — {report.get('images', 0)} images of {where}{note}"


class PerClassModel(QAbstractTableModel):
    """One row per class; `sort` orders the rows by a column (a view with sorting enabled calls it)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, float, float, float, int]] = []

    def show(self, report: dict[str, Any] | None) -> None:
        self.beginResetModel()
        pc = (report or {}).get("per_class") or {}
        names = (report or {}).get("classes") or []
        self.rows = [(name, pc["precision"][i], pc["recall"][i], pc["f1"][i], pc["support"][i])
                     for i, name in enumerate(names)] if pc else []
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return value if index.column() in (0, 4) else f"{value:.3f}"
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column():
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return value
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        key = (lambda r: r[0].casefold()) if column == 0 else (lambda r: r[column])
        self.rows.sort(key=key, reverse=order == Qt.SortOrder.DescendingOrder)
        self.layoutChanged.emit()
