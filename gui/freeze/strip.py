"""A thin strip beside the layer tree: the whole network from input (top) to head (bottom) in two colours.

The tree shows a few dozen rows at a time; the strip shows where the freeze boundary sits in the whole
network at a glance. Segments are sized by parameters or by blocks (right-click to switch); a click on a
segment asks the tree to show that module.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QContextMenuEvent, QFont, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QMenu, QToolTip, QWidget

from engine.model import checklist

FROZEN_COLOUR = QColor(120, 170, 225)
TRAINABLE_COLOUR = QColor(240, 150, 60)
HEAD_COLOUR = QColor(80, 180, 90)
EMPTY_COLOUR = QColor(225, 225, 225)

FROZEN, TRAINABLE, PARTLY, HEAD = "frozen", "trainable", "partly frozen", "head"
STATES = {checklist.FROZEN: FROZEN, checklist.TRAINABLE: TRAINABLE, checklist.PARTLY: PARTLY,
          checklist.HEAD: HEAD, checklist.NO_PARAMS: TRAINABLE}  # the checklist's row states, as drawn
MODES = {"blocks": "by blocks", "params": "by parameters"}


@dataclass(frozen=True)
class Segment:
    path: str
    weight: float
    state: str  # FROZEN, TRAINABLE, PARTLY or HEAD


class FreezeStrip(QWidget):
    """Custom-painted strip of `Segment`s; `module_clicked(path)` when the person clicks one."""

    module_clicked = Signal(str)
    mode_changed = Signal(str)

    LABEL_H = 16
    MIN_RUN_PX = 4.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._segments: list[Segment] = []
        self._spans: list[tuple[float, float, Segment]] = []
        self._mode = "blocks"
        self.setMouseTracking(True)
        self.setMinimumWidth(36)
        self.setToolTip("")

    def sizeHint(self) -> QSize:
        return QSize(40, 300)

    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"strip mode must be one of {', '.join(MODES)}, not {mode!r}")
        if mode != self._mode:
            self._mode = mode
            self.mode_changed.emit(mode)

    def set_segments(self, segments: list[Segment]) -> None:
        """Show these segments, input first; weights are relative (they are scaled to the strip's height)."""
        self._segments = list(segments)
        total = sum(s.weight for s in self._segments) or 1.0
        spans, at = [], 0.0
        for s in self._segments:
            spans.append((at / total, (at + s.weight) / total, s))
            at += s.weight
        self._spans = spans
        self.update()

    def segments(self) -> list[Segment]:
        return list(self._segments)

    def _bar(self) -> QRectF:
        return QRectF(6, self.LABEL_H, self.width() - 12, self.height() - 2 * self.LABEL_H)

    def _runs(self) -> list[tuple[float, float, list[tuple[float, float, Segment]]]]:
        """Neighbouring segments of one state merged into runs: (top px, height px, their spans).

        Every run gets at least `MIN_RUN_PX`, so a 6,000-parameter head stays visible beside 4M frozen ones.
        """
        bar = self._bar()
        runs: list[list] = []
        for lo, hi, seg in self._spans:
            if runs and runs[-1][2][-1][2].state == seg.state:
                runs[-1][1] = hi
                runs[-1][2].append((lo, hi, seg))
            else:
                runs.append([lo, hi, [(lo, hi, seg)]])
        heights = [max(self.MIN_RUN_PX, (hi - lo) * bar.height()) for lo, hi, _ in runs]
        scale = bar.height() / sum(heights) if heights else 1.0
        out, top = [], bar.top()
        for (_, _, spans), h in zip(runs, heights, strict=True):
            out.append((top, h * scale, spans))
            top += h * scale
        return out

    def segment_at(self, y: float) -> Segment | None:
        for top, height, spans in self._runs():
            if top <= y < top + height:
                lo, hi = spans[0][0], spans[-1][1]
                f = lo + (y - top) / height * (hi - lo)
                return next((seg for a, b, seg in spans if a <= f < b), spans[-1][2])
        return None

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        bar = self._bar()
        p.fillRect(bar, EMPTY_COLOUR)
        colours = {FROZEN: FROZEN_COLOUR, TRAINABLE: TRAINABLE_COLOUR, HEAD: HEAD_COLOUR, PARTLY: FROZEN_COLOUR}
        runs = self._runs()
        for top, height, spans in runs:
            state = spans[0][2].state
            rect = QRectF(bar.left(), top, bar.width(), height)
            p.fillRect(rect, colours[state])
            if state == PARTLY:
                p.fillRect(rect, QBrush(TRAINABLE_COLOUR, Qt.BrushStyle.BDiagPattern))
        if self._mode == "blocks":  # thin separators make the blocks countable
            p.setPen(QPen(QColor(255, 255, 255, 200), 1))
            for top, height, spans in runs:
                lo, hi = spans[0][0], spans[-1][1]
                for a, _, _ in spans[1:]:
                    y = top + (a - lo) / (hi - lo) * height
                    p.drawLine(QPointF(bar.left(), y), QPointF(bar.right(), y))
        p.setPen(QPen(QColor(90, 90, 90), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(bar.adjusted(0, 0, -1, -1))
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        p.setFont(font)
        p.drawText(QRectF(0, 0, self.width(), self.LABEL_H), Qt.AlignmentFlag.AlignCenter, "input")
        p.drawText(
            QRectF(0, self.height() - self.LABEL_H, self.width(), self.LABEL_H), Qt.AlignmentFlag.AlignCenter, "head"
        )
        p.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        s = self.segment_at(event.position().y())
        text = f"{s.path or 'model'}: {s.state}" if s else ""
        QToolTip.showText(event.globalPosition().toPoint(), text + f"\n(right-click: show {self._other_label()})", self)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            s = self.segment_at(event.position().y())
            if s is not None:
                self.module_clicked.emit(s.path)

    def _other_label(self) -> str:
        return MODES["params" if self._mode == "blocks" else "blocks"]

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = QMenu(self)
        for mode, label in MODES.items():
            action = menu.addAction(f"Size {label}")
            action.setCheckable(True)
            action.setChecked(mode == self._mode)
            action.triggered.connect(lambda _=False, m=mode: self.set_mode(m))
        menu.exec(event.globalPos())
