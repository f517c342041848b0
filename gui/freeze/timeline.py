"""The freeze timeline under the layer checklist: the network from input (top) to head (bottom), one lane per
block, the epochs across.

Frozen spans are grey; trainable ones are shaded by their learning rate (darker is faster, over three decades
down from the fastest); a partly frozen block is hatched. Each later stage of the schedule begins at a dashed
line whose handle, on top, drags it to another epoch (or, once clicked, the arrow keys move it); during a run a
red line marks where the run is. It draws what `engine.model.schedule.Schedule.plan_at` says, epoch by epoch, and
hands edits back as signals: the freeze panel writes them into the project.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QToolTip, QWidget

from engine.model.checklist import HEAD, PARTLY
from engine.model.schedule import Schedule, StagePlan

FROZEN_COLOUR = QColor(200, 203, 208)
SLOW_COLOUR = QColor(253, 224, 190)  # trainable at a thousandth of the fastest rate (or slower)
FAST_COLOUR = QColor(217, 95, 2)  # trainable at the fastest rate
NOW_COLOUR = QColor(214, 39, 40)
DECADES = 3.0  # the rates the shading tells apart, down from the fastest
MAX_COLUMNS = 600  # epochs sampled at most: a long run is drawn a column per few epochs


@dataclass(frozen=True)
class Boundary:
    """Where a stage begins: `index` in ``freeze.stages``, `start` (epochs before it), the range it may move in."""

    index: int
    start: int
    low: int
    high: int


def rate_colour(rate: float, fastest: float) -> QColor:
    """The shade of a trainable span: its rate on a log scale, from the fastest down `DECADES` decades."""
    t = min(1.0, max(0.0, 1.0 + math.log10(rate / fastest) / DECADES)) if rate > 0 and fastest > 0 else 0.0
    a, b = SLOW_COLOUR, FAST_COLOUR
    return QColor(round(a.red() + t * (b.red() - a.red())), round(a.green() + t * (b.green() - a.green())),
                  round(a.blue() + t * (b.blue() - a.blue())))


class Timeline(QWidget):
    """Custom-painted; `module_clicked(path)` when a lane is clicked, `boundary_moved(index, start)` when a stage's
    boundary is dropped on another epoch (only while editable)."""

    module_clicked = Signal(str)
    boundary_moved = Signal(int, int)

    HANDLE_H = 12
    AXIS_H = 16
    LABEL_W = 84
    GRAB_PX = 6

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.schedule: Schedule | None = None
        self.epochs = 0
        self.boundaries: list[Boundary] = []
        self.columns: list[tuple[int, int, StagePlan]] = []  # (first epoch, end epoch, its plan)
        self.fastest = 0.0
        self.now: float | None = None
        self.editable = True
        self.selected = 0  # the boundary the arrow keys move
        self._drag: tuple[int, int] | None = None  # (boundary, epoch it is dragged to)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumHeight(self.HANDLE_H + self.AXIS_H + 30)

    # ------------------------------------------------------------ what it shows

    def set_schedule(self, schedule: Schedule | None, epochs: int, boundaries: list[Boundary]) -> None:
        """Show `schedule` over `epochs` epochs (None: nothing), with these movable boundaries."""
        self.schedule, self.epochs, self.boundaries = schedule, max(1, epochs), list(boundaries)
        self.selected = min(self.selected, max(0, len(self.boundaries) - 1))
        self._drag = None
        self.columns = []
        if schedule is not None:
            step = max(1, math.ceil(self.epochs / MAX_COLUMNS))
            for e in range(0, self.epochs, step):
                plan = schedule.plan_at(e)
                end = min(self.epochs, e + step)
                last = self.columns[-1] if self.columns else None
                if last is not None and (last[2].states, last[2].rates) == (plan.states, plan.rates):
                    self.columns[-1] = (last[0], end, last[2])
                else:
                    self.columns.append((e, end, plan))
        rates = [r for _, _, p in self.columns for r in p.rates if r is not None]
        self.fastest = max(rates, default=0.0)
        self.updateGeometry()
        self.update()

    def set_now(self, epochs_done: float | None) -> None:
        """Where a run is, in epochs (1.5: half-way through the second); None hides the line."""
        self.now = epochs_done
        self.update()

    def set_editable(self, editable: bool) -> None:
        self.editable = editable
        self._drag = None
        self.update()

    def lanes(self) -> tuple[str, ...]:
        return self.schedule.lanes.names if self.schedule is not None else ()

    # ------------------------------------------------------------ geometry

    def sizeHint(self) -> QSize:
        return QSize(400, self.HANDLE_H + self.AXIS_H + max(40, min(120, 13 * len(self.lanes()))))

    def grid(self) -> QRectF:
        return QRectF(self.LABEL_W, self.HANDLE_H, max(1.0, self.width() - self.LABEL_W - 8),
                      max(1.0, self.height() - self.HANDLE_H - self.AXIS_H))

    def x_of(self, epochs: float) -> float:
        g = self.grid()
        return g.left() + epochs / self.epochs * g.width()

    def epoch_at(self, x: float) -> float:
        g = self.grid()
        return (x - g.left()) / g.width() * self.epochs

    def lane_at(self, y: float) -> int | None:
        g, n = self.grid(), len(self.lanes())
        if not n or not g.top() <= y < g.bottom():
            return None
        return min(n - 1, int((y - g.top()) / g.height() * n))

    def boundary_at(self, x: float) -> int | None:
        near = [(abs(self.x_of(b.start) - x), i) for i, b in enumerate(self.boundaries)]
        hit = min(near, default=(math.inf, None))
        return hit[1] if hit[0] <= self.GRAB_PX else None

    def plan_at(self, epoch: float) -> StagePlan | None:
        return next((p for a, b, p in self.columns if a <= epoch < b), None)

    # ------------------------------------------------------------ painting

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        g, names = self.grid(), self.lanes()
        p.fillRect(g, QColor(240, 240, 240))
        if names and self.columns:
            lane_h = g.height() / len(names)
            for first, end, plan in self.columns:
                x0, x1 = self.x_of(first), self.x_of(end)
                for k, state in enumerate(plan.states):
                    rect = QRectF(x0, g.top() + k * lane_h, x1 - x0, lane_h)
                    rate = plan.rates[k]
                    p.fillRect(rect, FROZEN_COLOUR if rate is None else rate_colour(rate, self.fastest))
                    if state == PARTLY:
                        p.fillRect(rect, QBrush(FROZEN_COLOUR.darker(130), Qt.BrushStyle.BDiagPattern))
            p.setPen(QPen(QColor(255, 255, 255), 1))
            for k in range(1, len(names)):
                y = g.top() + k * lane_h
                p.drawLine(QPointF(g.left(), y), QPointF(g.right(), y))
            self._paint_labels(p, names, lane_h)
        self._paint_axis(p)
        self._paint_boundaries(p)
        if self.now is not None:
            x = self.x_of(min(max(self.now, 0.0), self.epochs))
            p.setPen(QPen(NOW_COLOUR, 2))
            p.drawLine(QPointF(x, g.top() - 2), QPointF(x, g.bottom() + 2))
        p.setPen(QPen(QColor(90, 90, 90), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(g)
        p.end()

    def _small_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        return font

    def _paint_labels(self, p: QPainter, names: tuple[str, ...], lane_h: float) -> None:
        p.setFont(self._small_font())
        fm = p.fontMetrics()
        every = max(1, math.ceil(fm.height() / max(lane_h, 1.0)))  # thin out labels that would overlap
        g = self.grid()
        for k, name in enumerate(names):
            if k % every and k != len(names) - 1:
                continue
            bold = QFont(p.font())
            bold.setBold(self.schedule is not None and k == self.schedule.lanes.head)
            p.setFont(bold)
            text = p.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, self.LABEL_W - 8)
            rect = QRectF(2, g.top() + k * lane_h, self.LABEL_W - 6, max(lane_h, fm.height()))
            p.setPen(QColor(60, 60, 60))
            p.drawText(rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, text)

    def _paint_axis(self, p: QPainter) -> None:
        """Epoch numbers under their columns, as many as fit."""
        p.setFont(self._small_font())
        fm = p.fontMetrics()
        g = self.grid()
        width = g.width() / self.epochs
        every = max(1, math.ceil((fm.horizontalAdvance(str(self.epochs)) + 8) / max(width, 0.01)))
        p.setPen(QColor(60, 60, 60))
        for e in range(0, self.epochs, every):
            x = self.x_of(e + 0.5)
            p.drawText(QRectF(x - 20, g.bottom() + 1, 40, self.AXIS_H - 1), Qt.AlignmentFlag.AlignHCenter, str(e + 1))

    def _paint_boundaries(self, p: QPainter) -> None:
        g = self.grid()
        for i, b in enumerate(self.boundaries):
            at = self._drag[1] if self._drag is not None and self._drag[0] == i else b.start
            x = self.x_of(at)
            p.setPen(QPen(QColor(40, 40, 40), 1.5, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(x, g.top()), QPointF(x, g.bottom()))
            selected = i == self.selected and self.hasFocus()
            p.setPen(QPen(QColor(40, 40, 40), 1))
            p.setBrush(QColor(30, 90, 200) if selected else QColor(70, 70, 70) if self.editable else QColor(160, 160, 160))
            h = self.HANDLE_H - 2
            p.drawPolygon(QPolygonF([QPointF(x - h / 2, 1), QPointF(x + h / 2, 1), QPointF(x, h + 1)]))

    # ------------------------------------------------------------ the mouse and the keys

    def tooltip_at(self, pos: QPointF) -> str:
        """What is under `pos`, in words."""
        if pos.y() < self.HANDLE_H or self._drag is not None:
            i = self.boundary_at(pos.x())
            if i is not None:
                b = self.boundaries[i]
                how = "drag it to another epoch" if self.editable else "read-only while a run is going"
                return f"stage {b.index + 1} of the schedule begins after epoch {b.start}: {how}"
        k, epoch = self.lane_at(pos.y()), self.epoch_at(pos.x())
        if k is None or not 0 <= epoch < self.epochs:
            return ""
        plan = self.plan_at(epoch)
        if plan is None:
            return ""
        name, rate = self.lanes()[k], plan.rates[k]
        what = ("frozen" if rate is None else f"learning at {rate:.2g}" +
                (" (partly frozen)" if plan.states[k] == PARTLY else ""))
        head = " (the head)" if plan.states[k] == HEAD else ""
        return f"{name}{head} in epoch {int(epoch) + 1}: {what}; stage {plan.stage}"

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag is not None:
            b = self.boundaries[self._drag[0]]
            at = min(b.high, max(b.low, round(self.epoch_at(pos.x()))))
            if at != self._drag[1]:
                self._drag = (self._drag[0], at)
                self.update()
        QToolTip.showText(event.globalPosition().toPoint(), self.tooltip_at(pos), self)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        i = self.boundary_at(pos.x()) if pos.y() < self.grid().bottom() else None
        if i is not None and (pos.y() < self.HANDLE_H + 4 or self.editable):
            self.selected = i
            if self.editable:
                self._drag = (i, self.boundaries[i].start)
            self.update()
            return
        k = self.lane_at(pos.y())
        if k is not None and self.schedule is not None:
            self.module_clicked.emit(self.schedule.lanes.paths[k])

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is None:
            return
        i, at = self._drag
        self._drag = None
        self.update()
        if at != self.boundaries[i].start:
            self.boundary_moved.emit(self.boundaries[i].index, at)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        step = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1}.get(Qt.Key(event.key()))
        if step is None or not self.boundaries or not self.editable:
            super().keyPressEvent(event)
            return
        b = self.boundaries[self.selected]
        at = min(b.high, max(b.low, b.start + step))
        if at != b.start:
            self.boundary_moved.emit(b.index, at)
