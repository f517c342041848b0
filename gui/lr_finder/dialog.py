"""The learning-rate finder's dialog: the engine's sweep (`engine.train.lr_finder.find_lr`) in a background thread,
its loss drawn against a logarithmic learning rate as it comes, the four suggestions marked when it ends.

A click on the curve sets ``train.lr`` to the rate under the mouse, "Use" to the chosen suggestion (`use`: the
window makes it an undoable edit like any other). "Stop" ends the sweep early; closing the dialog stops it too.
Nothing of the sweep is kept: the engine builds its own model and puts everything back.
"""

from __future__ import annotations

import math
import threading

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import ThawError
from engine.project import Project
from engine.train.lr_finder import SUGGESTIONS, Sweep, find_lr, smooth
from engine.wording import training_failed
from gui.naming import named
from gui.tasks import Task

WORDS = {"valley": "valley (default)", "steepest": "steepest", "minimum": "minimum / 10", "slide": "slide"}
COLOURS = {"valley": (214, 39, 40), "steepest": (148, 103, 189), "minimum": (140, 86, 75), "slide": (23, 190, 207)}


class LrFinderDialog(QDialog):
    """Sweeps `project` (a copy) when shown; `use(rate)` when the person picks a rate for ``train.lr``."""

    use = Signal(float)

    def __init__(self, project: Project, parent: QWidget | None = None, steps: int = 100) -> None:
        super().__init__(parent)
        self.setObjectName("lrFinderDialog")
        self.setWindowTitle("Learning-rate finder")
        self.project, self.steps = project, steps
        self.task: Task | None = None
        self.result: Sweep | None = None
        self.chosen: float | None = None
        self._lrs: list[float] = []
        self._losses: list[float] = []

        intro = QLabel(f"A short mock training with the rate growing from 1e-7 to 10 over {steps} steps; the loss "
                       "falls, then climbs once the rate is too high. The suggestions are a starting point. "
                       "Click the curve, or choose a suggestion and press Use, to set the learning rate.")
        intro.setWordWrap(True)
        self.plot = named(pg.PlotWidget(), "lrFinderPlot", "Loss against learning rate")
        item = self.plot.getPlotItem()
        item.setLogMode(x=True, y=False)
        item.setLabel("bottom", "learning rate (head)")
        item.setLabel("left", "loss")
        item.showGrid(x=True, y=True, alpha=0.2)
        self.raw = item.plot([], [], pen=pg.mkPen((180, 200, 230), width=1))
        self.curve = item.plot([], [], pen=pg.mkPen((31, 119, 180), width=2))
        self.markers = {name: item.plot([], [], pen=None, symbol="o", symbolSize=9, symbolBrush=COLOURS[name])
                        for name in SUGGESTIONS}
        self.line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((60, 60, 60), style=Qt.PenStyle.DashLine))
        self.line.setVisible(False)
        item.addItem(self.line, ignoreBounds=True)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.setMinimumSize(420, 240)

        self.choices = QButtonGroup(self)
        row = QHBoxLayout()
        self.choice_buttons: dict[str, QRadioButton] = {}
        for name in SUGGESTIONS:
            button = named(QRadioButton(WORDS[name]), f"lrSuggestion_{name}", f"Suggestion: {WORDS[name]}")
            button.setEnabled(False)
            button.toggled.connect(lambda on, n=name: on and self._choose(n))
            self.choices.addButton(button)
            self.choice_buttons[name] = button
            row.addWidget(button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.again = named(QPushButton("Stop"), "lrFinderAgain", "Stop or sweep again")
        self.again.clicked.connect(self._again)
        self.use_button = named(QPushButton("Use"), "lrFinderUse", "Use the chosen learning rate")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(lambda: self.chosen is not None and self.use.emit(self.chosen))
        close = named(QPushButton("Close"), "lrFinderClose", "Close the learning-rate finder")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        for button in (self.again, self.use_button, close):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.plot, 1)
        layout.addLayout(row)
        layout.addLayout(buttons)
        self.resize(640, 460)

    # ------------------------------------------------------------ the sweep

    def start(self) -> None:
        """Sweep (again) in a background thread."""
        if self.task is not None:
            return
        self.result, self.chosen = None, None
        self._lrs, self._losses = [], []
        for curve in (self.raw, self.curve, *self.markers.values()):
            curve.setData([], [])
        self.line.setVisible(False)
        for button in self.choice_buttons.values():
            button.setEnabled(False)
            button.setText(WORDS[button.objectName().rpartition("_")[2]])
        self.use_button.setEnabled(False)
        self.again.setText("Stop")
        self.status.setText("Preparing the data and the model...")
        stop = threading.Event()
        project, steps = self.project, self.steps
        self.task = Task(lambda state: find_lr(project, steps=steps, stop=stop,
                                               progress=lambda i, lr, loss: state.report((lr, loss))),
                         self, "thaw-lr-finder", stop=stop)
        self.task.reported.connect(self._point)
        self.task.returned.connect(self._done)
        self.task.errored.connect(self._failed)
        self.task.finished.connect(self._finished)
        self.task.start()

    def is_running(self) -> bool:
        return self.task is not None and self.task.is_running()

    def stop(self) -> None:
        if self.task is not None:
            self.task.request_interruption()

    def _point(self, point: tuple[float, float]) -> None:
        lr, loss = point
        self._lrs.append(lr)
        self._losses.append(loss)
        self._draw(self._lrs, self._losses, smooth(self._losses))
        self.status.setText(f"Sweeping: step {len(self._lrs)} of {self.steps}, rate {lr:.2g}")

    def _draw(self, lrs: list[float], losses: list[float], smoothed: list[float]) -> None:
        finite = [i for i, v in enumerate(smoothed) if math.isfinite(v) and math.isfinite(losses[i])]
        self.raw.setData([lrs[i] for i in finite], [losses[i] for i in finite])
        self.curve.setData([lrs[i] for i in finite], [smoothed[i] for i in finite])

    def _done(self, result: Sweep) -> None:
        self.result = result
        self._draw(result.lrs, result.losses, result.smoothed)
        for name, lr in result.suggestions.items():
            button = self.choice_buttons[name]
            if lr is None:
                continue
            button.setText(f"{WORDS[name]}: {lr:.2g}")
            button.setEnabled(True)
            self.markers[name].setData([lr], [_loss_at(result, lr)])
        how = {"done": "", "diverged": f"; the loss diverged at {result.lrs[-1]:.2g}" if result.lrs else "",
               "not a number": "; the loss was not a number at the end", "stopped": "; stopped"}[result.ended]
        where = "cached features" if result.feature_cache else "the model"
        self.status.setText(f"{len(result.lrs)} steps on {where} in {result.seconds:.1f} s{how}. "
                            + " ".join(result.notes))
        if result.suggestions["valley"] is not None:
            self.choice_buttons["valley"].setChecked(True)
            self._choose("valley")

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(str(exc) if isinstance(exc, ThawError) else training_failed(exc))
        self.status.setStyleSheet("color: #b00020;")

    def _finished(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.deleteLater()
        self.again.setText("Sweep again")

    def _again(self) -> None:
        if self.task is not None:
            self.stop()
        else:
            self.status.setStyleSheet("")
            self.start()

    # ------------------------------------------------------------ choosing a rate

    def _choose(self, name: str) -> None:
        if self.result is not None and self.result.suggestions[name] is not None:
            self._mark(self.result.suggestions[name])

    def _mark(self, lr: float) -> None:
        self.chosen = lr
        self.line.setPos(math.log10(lr))
        self.line.setVisible(True)
        self.use_button.setEnabled(True)
        self.use_button.setText(f"Use {lr:.2g}")

    def pick(self, lr: float) -> None:
        """Set `lr` (from the curve) as the learning rate: within the swept range, two significant digits."""
        if not self._lrs and self.result is None:
            return
        lrs = self.result.lrs if self.result is not None else self._lrs
        lr = float(f"{min(max(lr, lrs[0]), lrs[-1]):.2g}")
        self.choices.setExclusive(False)  # no suggestion is chosen now
        for button in self.choice_buttons.values():
            button.setChecked(False)
        self.choices.setExclusive(True)
        self._mark(lr)
        self.use.emit(lr)

    def _clicked(self, event) -> None:
        vb = self.plot.getPlotItem().vb
        if event.button() == Qt.MouseButton.LeftButton and vb.sceneBoundingRect().contains(event.scenePos()):
            self.pick(10 ** vb.mapSceneToView(event.scenePos()).x())

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if self.task is None and self.result is None:
            self.start()

    def done(self, code: int) -> None:  # noqa: A003 (Qt's name): closing stops the sweep and waits for it
        if self.task is not None:
            self.stop()
            self.task.join()
        super().done(code)

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.task is not None:
            self.stop()
            self.task.join()
        super().closeEvent(event)


def _loss_at(result: Sweep, lr: float) -> float:
    """The smoothed loss at the swept rate nearest `lr` (where its marker sits on the curve)."""
    i = min(range(len(result.lrs)), key=lambda k: abs(math.log(result.lrs[k] / lr)))
    return result.smoothed[i]
