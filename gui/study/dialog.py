"""The transfer study in the window: the same project trained several ways on the same images and seeds
(`engine.study`), in a background task with one progress bar and ETA; then its table and the validation curves
of the recipes, overlaid. Stop keeps what is done; Start on the same folder continues it."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.errors import ThawError
from engine.study import recipes as rc
from engine.study.runner import STUDY_FILE, Settings, Study, blocks_of, default_folder
from engine.study.table import tables, val_curve
from engine.wording import clock
from gui.naming import named
from gui.plots.plot import Plot
from gui.plots.training import ReadoutLabel
from gui.tasks import Task
from gui.text import WrappingLabel

COLUMNS = ("recipe", "accuracy", "per seed", "\u2212 scratch", "won / tied / lost", "s / run", "advisor's pick")
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127))


def mean_curve(run_dirs: list[str]) -> tuple[list[int], list[float]]:
    """The validation accuracy per epoch (in %), averaged over the runs that reached that epoch."""
    by_epoch: dict[int, list[float]] = {}
    for run_dir in run_dirs:
        for epoch, accuracy in val_curve(run_dir):
            by_epoch.setdefault(epoch, []).append(accuracy)
    epochs = sorted(by_epoch)
    return epochs, [100 * sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs]


class StudyDialog(QDialog):
    """Settings, Start/Stop, progress, and the result of one study folder."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.setObjectName("studyDialog")
        self.setWindowTitle("Transfer study")
        self.window_ = window
        self.task: Task | None = None
        self.state: dict[str, Any] | None = None
        self._done = -1
        self._error = ""
        self._build()

    def _build(self) -> None:
        self.recipes = named(QLineEdit(), "studyRecipes", "Recipes")
        self.recipes.setPlaceholderText("default: scratch, fe, last1, last2, full and the advisor's pick")
        self.recipes.setToolTip("scratch, fe (feature extraction), lastN (the last N blocks), full; comma-separated")
        self.seeds = named(QSpinBox(), "studySeeds", "Seeds")
        self.seeds.setRange(1, 50)
        self.seeds.setValue(Settings.seeds)
        self.per_class = named(QLineEdit("all"), "studyPerClass", "Images per class")
        self.per_class.setToolTip("Train on subsets of this many images per class, e.g. 5, 10, all")
        self.folder = named(QLineEdit(), "studyFolder", "Study folder")
        self.folder.setToolTip("Where the study keeps its runs and table; a folder holding a study is continued")
        first = QHBoxLayout()
        for label, widget, stretch in (("Recipes:", self.recipes, 3), ("Seeds:", self.seeds, 0),
                                       ("Images per class:", self.per_class, 1)):
            first.addWidget(QLabel(label))
            first.addWidget(widget, stretch)
        self.start_button = named(QPushButton("Start"), "startStudy", "Start or continue the study")
        self.stop_button = named(QPushButton("Stop"), "stopStudy", "Stop the study (what is done is kept)")
        self.load_button = named(QPushButton("Show folder"), "loadStudy", "Show the study in the folder")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.load_button.clicked.connect(lambda: self.load(self.folder.text()))
        self.stop_button.setEnabled(False)
        second = QHBoxLayout()
        second.addWidget(QLabel("Folder:"))
        second.addWidget(self.folder, 1)
        for b in (self.start_button, self.stop_button, self.load_button):
            second.addWidget(b)
        self.progress = named(QProgressBar(), "studyProgress", "Study progress")
        self.progress.setRange(0, 1000)
        self.status = WrappingLabel()
        self.group = named(QComboBox(), "studyGroup", "Images per class shown")
        self.group.currentIndexChanged.connect(lambda _i: self.show_result())
        self.table = named(QTableWidget(0, len(COLUMNS)), "studyTable", "Study results")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.summary = WrappingLabel()
        self.readout = ReadoutLabel()
        self.curves = Plot("Validation accuracy (mean over seeds)", "epoch", "accuracy", self.readout.setText,
                           legend_corner=(1, 1), percent=True)
        named(self.curves.widget, "studyCurves", "Validation curves of the recipes")
        table_side = QWidget()
        lay = QVBoxLayout(table_side)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.group)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.summary)
        plot_side = QWidget()
        lay = QVBoxLayout(plot_side)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.curves.widget, 1)
        lay.addWidget(self.readout)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(table_side)
        split.addWidget(plot_side)
        split.setSizes([260, 300])  # a table of 5-8 recipes, and the curves under it
        layout = QVBoxLayout(self)
        layout.addLayout(first)
        layout.addLayout(second)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)
        self.resize(1000, 660)

    # ------------------------------------------------------------ running

    def prepare(self, project) -> None:
        """A new study of `project`: its default folder (nothing written yet)."""
        if not self.is_running():
            self.folder.setText(str(default_folder(project)))
            self.status.setText("Each recipe is an ordinary run; the study folder keeps the table and the links.")

    def is_running(self) -> bool:
        return self.task is not None and self.task.is_running()

    def start(self) -> bool:
        """Start (or continue) the study in the folder; a setting the engine refuses is said, nothing started."""
        if self.is_running():
            return False
        project = self.window_.project.copy()
        try:
            per_class = rc.parse_per_class(self.per_class.text())
            names = rc.parse(self.recipes.text(), blocks_of(project)) if self.recipes.text().strip() else None
            study = Study(project, self.folder.text(), Settings(names, self.seeds.value(), per_class),
                          source=str(self.window_.path or project.name))
        except ThawError as exc:
            self.status.setText(f"Cannot start: {exc}")
            return False
        stop = threading.Event()
        self._error, self._done = "", -1
        self.task = Task(lambda state: study.run(progress=state.report, stop=stop), self, "thaw-study", stop=stop)
        self.task.reported.connect(self._progressed)
        self.task.errored.connect(self._failed)
        self.task.finished.connect(lambda: self._finished(study.folder))
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText("Measuring the first cell's depths (the advisor), then the first run...")
        self.task.start()
        return True

    def stop(self) -> None:
        if self.task is not None:
            self.task.request_interruption()
            self.status.setText("Stopping after the current layer; what is done is kept (Start continues).")

    def stop_and_join(self) -> None:
        if self.task is not None:
            self.task.request_interruption()
            self.task.join()

    def _progressed(self, p) -> None:
        self.progress.setValue(round(1000 * p.fraction))
        self.progress.setFormat(f"{p.done} of {p.total} runs")
        self.status.setText(f"{p.current} \u00b7 ETA {clock(p.eta_seconds)}")
        if p.done != self._done:  # a run finished: the table so far
            self._done = p.done
            self.load(self.folder.text(), quiet=True)

    def _failed(self, exc: BaseException) -> None:
        self._error = f"The study stopped: {exc}"

    def _finished(self, folder: Path) -> None:
        """The task is over (done, stopped or failed): what it left in the folder, and why it ended early."""
        self.task.deleteLater()
        self.task = None
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.load(folder, quiet=True)
        if self._error:
            self.status.setText(self._error)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.stop_and_join()
        super().closeEvent(event)

    # ------------------------------------------------------------ the result

    def load(self, folder: str | Path, quiet: bool = False) -> bool:
        """Show the study saved in `folder` (its study.json)."""
        try:
            self.state = json.loads((Path(folder) / STUDY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            if not quiet:
                self.status.setText(f"No study to show in {folder}: {exc}")
            return False
        keep = self.group.currentData()
        self.group.blockSignals(True)
        self.group.clear()
        for k in self.state["settings"]["per_class"]:
            self.group.addItem("all training images" if k is None else f"{k} images per class", k)
        self.group.setCurrentIndex(max(0, self.group.findData(keep)))
        self.group.blockSignals(False)
        if not self.is_running():
            done = sum(r.get("accuracy") is not None for c in self.state["cells"] for r in c["runs"].values())
            total = sum(len(c["runs"]) for c in self.state["cells"])
            self.progress.setValue(round(1000 * done / total) if total else 0)
            self.progress.setFormat(f"{done} of {total} runs")
            self.status.setText(f"The study in {folder}: {done} of {total} runs done"
                                + ("." if done == total else "; Start continues it."))
        self.show_result()
        return True

    def show_result(self) -> None:
        if self.state is None or self.group.currentIndex() < 0:
            return
        k = self.group.currentData()
        table = next((t for t in tables(self.state) if t["per_class"] == k), None)
        rows = table["rows"] if table else []
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            vs = r["vs_scratch"]
            cells = (r["label"], f"{100 * r['mean']:.1f} \u00b1 {100 * r['std']:.1f}%",
                     " ".join(f"{100 * a:.1f}" for a in r["accuracy"]),
                     f"{vs['mean']:+.1f} \u00b1 {vs['std']:.1f} pt" if vs else "",
                     f"{vs['won']} / {vs['tied']} / {vs['lost']}" if vs else "", f"{r['seconds']:.1f}",
                     f"\u2605 {r['picked']}/{len(r['seeds'])}" if r["picked"] else "")
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignVCenter | (
                        Qt.AlignmentFlag.AlignLeft if j == len(cells) - 1 else Qt.AlignmentFlag.AlignRight))
                self.table.setItem(i, j, item)
        split = table["split"] if table else None
        a = table.get("advisor") if table else None
        self.summary.setText(
            (f"{split.capitalize()} accuracy over {table['seeds_done']} of {table['seeds']} seeds. " if split else
             "No seed done yet. ")
            + (f"The advisor's picks: {100 * a['mean']:.1f}%; the best recipe, {a['best']}: "
               f"{100 * a['best_mean']:.1f}% (gap {a['gap']:.1f} points)." if a else ""))
        self._show_curves(k)

    def _show_curves(self, k) -> None:
        runs: dict[str, tuple[str, list[str]]] = {}
        for cell in self.state["cells"]:
            if cell["per_class"] == k:
                for name, run in cell["runs"].items():
                    runs.setdefault(name, (run["label"], []))[1].append(run["run_dir"])
        self.curves.remove_curves()
        for i, (label, dirs) in enumerate(runs.values()):
            epochs, values = mean_curve(dirs)
            series = self.curves.add(label, pg.mkColor(COLOURS[i % len(COLOURS)]), symbol="o")
            series.extend(epochs, values)
        self.curves.redraw()
