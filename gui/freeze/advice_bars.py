"""The advisor's column beside the layer checklist: a small bar per cut point, the suggestion and its evidence,
and Apply. It shows what `engine.advice` measured and decided; the bars compare the cut points with each other
(the lowest score gets the shortest bar), never grade one alone (thuml/LogME#28)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.naming import named
from gui.text import WrappingLabel

WIDTH = 210
ROW = 38
BAR_COLOUR = QColor(70, 120, 200)
SUGGESTED = QColor(255, 243, 196)


class CutBars(QWidget):
    """One row per cut point, input side first as in the tree: where it cuts, what trains, a LogME bar, the probe's
    held-out accuracy. Clicking a row shows its block in the tree."""

    block_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict] = []  # {"where", "trains", "logme", "probe", "block", "suggested"}
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_rows(self, rows: list[dict]) -> None:
        self.rows = rows
        self.setFixedHeight(ROW * len(rows) + 2)
        self.setToolTip("LogME of the features at each cut point (bar, from the lowest to the highest here) and the "
                        "held-out accuracy of a linear probe on them. Click a row to show its block.")
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        return QSize(WIDTH - 20, ROW * len(self.rows) + 2)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        if not self.rows:
            return
        p = QPainter(self)
        values = [r["logme"] for r in self.rows if r["logme"] is not None]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        fm = p.fontMetrics()
        w = self.width()
        muted = self.palette().color(self.foregroundRole())
        muted.setAlpha(150)
        for i, r in enumerate(self.rows):
            top = i * ROW
            if r["suggested"]:
                p.fillRect(0, top, w, ROW - 2, SUGGESTED)
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(4, top + fm.ascent() + 2, ("\u2605 " if r["suggested"] else "") + r["where"])
            p.setPen(muted)
            p.drawText(QRectF(0, top + 2, w - 4, fm.height()), Qt.AlignmentFlag.AlignRight, r["trains"])
            if r["logme"] is None:
                continue
            share = (r["logme"] - lo) / (hi - lo) if hi > lo else 1.0
            probe = f"{100 * r['probe']:.0f}%"
            room = w - 8 - fm.horizontalAdvance(" 100%") - fm.horizontalAdvance("-0.00 ")
            bar = QRectF(4, top + fm.height() + 6, max(3.0, room * (0.1 + 0.9 * share)), ROW - fm.height() - 12)
            p.fillRect(bar, BAR_COLOUR)
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(QRectF(bar.right() + 4, bar.top() - 3, w, bar.height() + 6), Qt.AlignmentFlag.AlignVCenter,
                       f"{r['logme']:.2f}")
            p.drawText(QRectF(0, bar.top() - 3, w - 4, bar.height() + 6),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, probe)
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        i = int(event.position().y() // ROW)
        if 0 <= i < len(self.rows) and self.rows[i]["block"]:
            self.block_clicked.emit(self.rows[i]["block"])


class AdviceColumn(QFrame):
    """Hidden until Suggest is pressed; then the measuring's progress, and its answer."""

    apply_requested = Signal()
    block_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(WIDTH)
        title = QLabel("<b>Where to cut</b>")
        self.close_button = named(QToolButton(), "closeSuggestion", "Close the suggestion")
        self.close_button.setText("\u00d7")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.hide)
        head = QHBoxLayout()
        head.addWidget(title, 1)
        head.addWidget(self.close_button)
        self.status = WrappingLabel()
        self.bars = named(CutBars(), "cutBars", "Scores per cut point")
        self.bars.block_clicked.connect(self.block_clicked)
        self.suggestion = WrappingLabel()
        self.evidence = WrappingLabel()
        self.evidence.setStyleSheet("color: #444;")
        self.evidence.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.bars)
        lay.addWidget(self.suggestion)
        lay.addWidget(self.evidence)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.apply_button = named(QPushButton("Apply"), "applySuggestion", "Apply the suggested freeze plan")
        self.apply_button.setToolTip("Set the suggested preset and learning rates (one step: Undo takes it back)")
        self.apply_button.clicked.connect(self.apply_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.addLayout(head)
        layout.addWidget(self.status)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.apply_button)
        self.show_busy("")
        self.hide()

    def show_busy(self, text: str) -> None:
        """Measuring: what it is doing now; the last answer goes."""
        self.status.setText(text or "Measuring...")
        self.bars.set_rows([])
        self.suggestion.setText("")
        self.evidence.setText("")
        self.apply_button.setEnabled(False)
        self.show()

    def show_error(self, text: str) -> None:
        self.show_busy("")
        self.status.setText(f"Could not measure: {text}")

    def show_advice(self, advice) -> None:
        """An `engine.advice.rule.Advice`: the bars, the suggestion in bold, the evidence and the caveat."""
        m = advice.measured
        plan = advice.plan
        chosen = plan.last_blocks if plan.preset == "last_blocks" else 0 if plan.preset == "feature_extraction" else -1
        rows = []
        if m is not None:
            for d in reversed(m.depths):  # input side first, as in the tree
                trains = "head" if d.trained == 0 else f"last {d.trained}"
                rows.append({"where": "head's input" if d.trained == 0 else f"after {d.after}", "trains": trains,
                             "logme": d.logme, "probe": d.probe, "block": d.after, "suggested": d.trained == chosen})
            self.status.setText(f"Measured on {m.scored} training images (probe: {m.held_out} validation "
                                f"images) in {m.seconds:.1f} s.")
        else:
            self.status.setText("Nothing measured.")
        if chosen == -1 and rows:
            rows.insert(0, {"where": "every block (full)", "trains": "all", "logme": None, "probe": None,
                            "block": "", "suggested": True})
        self.bars.set_rows(rows)
        self.suggestion.setText(f"<b>Suggested: {plan.label}</b>, learning rate {plan.lr:g}"
                                + (f", body at {plan.backbone_lr_mult:g}x" if plan.preset != "feature_extraction" else ""))
        self.evidence.setText("\n\n".join([*advice.evidence, advice.caveat]))
        self.apply_button.setEnabled(True)
        self.show()

    def mark_stale(self) -> None:
        """The model or data changed since it measured: the answer is about another project."""
        if self.apply_button.isEnabled():
            self.apply_button.setEnabled(False)
            self.status.setText("Measured before the model or the data changed: Suggest again.")
