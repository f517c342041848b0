"""Runs, side by side: the project's runs with their key settings and results; select two or more to overlay
their validation accuracy per epoch and see the settings that differ with each run's accuracies.

Everything shown is the engine's (`engine.runs.catalog`: the runs, their settings and results, which settings
differ); the list is read in the background, a run's curve when it is selected (one small file).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QItemSelection, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.naming import named
from gui.plots.plot import PercentAxis
from gui.tasks import Latest
from gui.text import WrappingLabel

COLUMNS = ("Run", "Started", "Status", "Architecture", "Freeze", "Epochs", "Best val", "Held-out")
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
HINT = "Select two or more runs (Ctrl- or Shift-click) to compare their curves and the settings that differ."


def _pct(x: float | None) -> str:
    return f"{x:.1%}" if x is not None else "-"


def freeze_text(settings: dict[str, Any]) -> str:
    preset = settings.get("freeze.preset", "")
    if preset == "last_blocks":
        n = settings.get("freeze.last_blocks", 1)
        return f"last {n} block{'s' * (n != 1)}"
    return str(preset).replace("_", " ")


def held_out(record) -> str:
    e = record.evaluation
    return f"{_pct(e.accuracy)} ({e.split})" if e is not None else "-"


class RunsModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.records: list = []

    def show(self, records: list) -> None:
        self.beginResetModel()
        self.records = list(records)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def cells(self, r) -> tuple[str, ...]:
        s = r.settings
        done = r.epochs_completed
        return (r.name, time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started)), r.status, s.get("model.arch", ""),
                freeze_text(s), f"{done if done is not None else '-'}/{s.get('train.epochs', '?')}",
                _pct(r.best_val_accuracy), held_out(r))

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cells(self.records[index.row()])[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(self.records[index.row()].folder)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None


class RunsView(QWidget):
    open_requested = Signal(object)  # the folder of the run to show in Results

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder: Path | None = None
        self._listing = Latest(self, "thaw-runs")
        self._listing.returned.connect(self._listed)
        self.title = WrappingLabel()
        self.refresh_button = named(QPushButton("Refresh"), "refreshRuns", "Read the runs again")
        self.refresh_button.clicked.connect(self.refresh)
        self.open_button = named(QPushButton("Show in Results"), "showRunResults", "Show the selected run's results")
        self.open_button.clicked.connect(self._open_selected)
        self.model = RunsModel(self)
        self.table = named(QTableView(), "runsTable", "Runs of the project")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().selectionChanged.connect(self._selected)
        self.table.doubleClicked.connect(lambda index: self.open_requested.emit(self.model.records[index.row()].folder))
        self.hint = WrappingLabel(HINT)
        self.plot = named(pg.PlotWidget(axisItems={"left": PercentAxis("left")}), "runCurves",
                          "Validation accuracy of the selected runs")
        item = self.plot.getPlotItem()
        item.setTitle("Validation accuracy")
        item.setLabel("bottom", "epoch")
        item.showGrid(x=True, y=True, alpha=0.2)
        self.legend = item.addLegend(brush=(255, 255, 255, 210), labelTextSize="8pt")
        self.plot.setMinimumSize(220, 150)
        self.differences = named(QTableWidget(), "runDifferences", "Settings that differ, and accuracies")
        self.differences.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.compare = QSplitter(Qt.Orientation.Horizontal)
        self.compare.setChildrenCollapsible(False)
        self.compare.addWidget(self.plot)
        self.compare.addWidget(self.differences)
        buttons = QHBoxLayout()
        buttons.addWidget(self.title, 1)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.open_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(buttons)
        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        split.addWidget(self.table)
        below = QWidget()
        blay = QVBoxLayout(below)
        blay.setContentsMargins(0, 0, 0, 0)
        blay.addWidget(self.hint)
        blay.addWidget(self.compare, 1)
        split.addWidget(below)
        lay.addWidget(split, 1)
        self._selected()

    def set_folder(self, folder: str | Path) -> None:
        """List the runs in `folder` (a project's output folder), in the background."""
        self.folder = Path(folder)
        self.refresh()

    def refresh(self) -> None:
        if self.folder is None:
            return
        folder = self.folder
        self.title.setText(f"Reading the runs in {folder}...")

        def work(_state):
            from engine.runs import catalog

            return folder, catalog.runs_in(folder)

        self._listing.start(work)

    def is_busy(self) -> bool:
        return self._listing.is_busy()

    def _listed(self, value) -> None:
        folder, records = value
        chosen = {r.folder for r in self.selected()}
        self.model.show(records)
        self.title.setText(f"{len(records)} run{'s' * (len(records) != 1)} in {folder}" if records
                           else f"No runs yet in {folder}: train the project to make one.")
        self.select([row for row, r in enumerate(records) if r.folder in chosen])  # the same runs stay selected
        self._selected()

    def selected(self) -> list:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.records[r] for r in rows if r < len(self.model.records)]

    def select(self, rows: list[int]) -> None:
        """Select these rows (as Ctrl-clicks would)."""
        selection = QItemSelection()
        for row in rows:
            selection.select(self.model.index(row, 0), self.model.index(row, len(COLUMNS) - 1))
        self.table.selectionModel().select(selection, self.table.selectionModel().SelectionFlag.ClearAndSelect)

    def _open_selected(self) -> None:
        chosen = self.selected()
        if chosen:
            self.open_requested.emit(chosen[0].folder)

    def _selected(self, *_: Any) -> None:
        from engine.runs import catalog

        chosen = self.selected()
        self.open_button.setEnabled(len(chosen) == 1 and chosen[0].has_model)
        self.plot.getPlotItem().clear()
        self.legend.clear()
        for k, record in enumerate(chosen):
            try:
                epochs = catalog.history(record.folder, record.summary)
            except Exception:  # noqa: BLE001 - a damaged metrics.csv leaves that run's curve out
                continue
            colour = COLOURS[k % len(COLOURS)]
            self.plot.getPlotItem().plot([e.epoch for e in epochs], [100 * e.val_accuracy for e in epochs],
                                         name=record.name, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                                         symbolBrush=colour, symbolPen=None)
        self.plot.getPlotItem().setYRange(0, 100, padding=0.05)
        self._difference_table(chosen, catalog.differing(chosen) if len(chosen) > 1 else [], catalog.applies)
        self.hint.setVisible(len(chosen) < 2)

    def _difference_table(self, chosen: list, keys: list[str], applies) -> None:
        """Rows: each setting that differs, then the accuracies; a column per run."""
        rows = [*keys, "best val accuracy", "held-out accuracy"] if len(chosen) > 1 else []
        table = self.differences
        table.clear()
        table.setColumnCount(len(chosen) if rows else 0)
        table.setRowCount(len(rows))
        table.setHorizontalHeaderLabels([r.name for r in chosen] if rows else [])
        table.setVerticalHeaderLabels(rows)
        for c, record in enumerate(chosen if rows else []):
            for r, key in enumerate(rows):
                if key == "best val accuracy":
                    text = _pct(record.best_val_accuracy)
                elif key == "held-out accuracy":
                    text = held_out(record)
                else:
                    text = str(record.settings.get(key)) if applies(record.settings, key) else "unused"
                table.setItem(r, c, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        if len(chosen) > 1 and not keys:
            table.setToolTip("These runs have the same settings (only their names or output folders differ).")
        else:
            table.setToolTip("")

    def shutdown(self) -> None:
        self._listing.shutdown()
