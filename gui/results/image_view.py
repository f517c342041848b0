"""One image large: the picture the model sees (its resize and crop), the five likeliest classes as bars, and the
Grad-CAM overlay of a class over it (on or off, its opacity). The picture and the map come from the run's
model in the background (`RunModel.explain`); blending them is instant, so the opacity slider is live."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from gui.naming import named
from gui.pictures import to_qimage
from gui.text import ElidedLabel, WrappingLabel

BAR = QColor(66, 133, 244)
TRUE_BAR = QColor(46, 125, 50)


class Picture(QWidget):
    """A pixmap drawn as large as fits, its aspect kept (a 32 px image is scaled up, smoothly)."""

    def __init__(self) -> None:
        super().__init__()
        self.pixmap: QPixmap | None = None
        self.note = ""
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_pixmap(self, pixmap: QPixmap | None, note: str = "") -> None:
        self.pixmap, self.note = pixmap, note
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        if self.pixmap is None or self.pixmap.isNull():
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.note)
            return
        size = self.pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, size.width(), size.height())
        target.moveCenter(self.rect().center())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(target, self.pixmap)


class TopBars(QWidget):
    """The likeliest classes, one bar each with its probability; the true class's bar in green."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, float, bool]] = []
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def show_rows(self, rows: list[tuple[str, float, bool]]) -> None:
        self.rows = rows
        self.setFixedHeight(max(1, len(rows)) * self._line())
        self.setAccessibleDescription("; ".join(f"{name} {p:.1%}" for name, p, _ in rows))
        self.update()

    def _line(self) -> int:
        return self.fontMetrics().height() + 6

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, max(1, len(self.rows)) * self._line())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        fm, line = self.fontMetrics(), self._line()
        name_w = min(self.width() // 3, max((fm.horizontalAdvance(n) for n, _, _ in self.rows), default=0) + 8)
        pct_w = fm.horizontalAdvance("100.0%") + 8
        bar_w = max(10, self.width() - name_w - pct_w)
        text = self.palette().color(QPalette.ColorRole.Text)
        for k, (name, p, true) in enumerate(self.rows):
            y = k * line
            painter.setPen(text)
            painter.drawText(QRect(0, y, name_w - 4, line), Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(name, Qt.TextElideMode.ElideRight, name_w - 4))
            painter.fillRect(QRect(name_w, y + 3, bar_w, line - 6), QColor(235, 235, 235))
            painter.fillRect(QRect(name_w, y + 3, round(bar_w * p), line - 6), TRUE_BAR if true else BAR)
            painter.drawText(QRect(name_w + bar_w, y, pct_w, line), Qt.AlignmentFlag.AlignRight
                             | Qt.AlignmentFlag.AlignVCenter, f"{p:.1%}")


class ImageDetail(QWidget):
    """`show_image(path, true, top)`, then `show_picture(...)` when the model's picture arrives; asks for it and
    for another class's map with `wanted(path, class, cam)`; `back` returns to the gallery."""

    back = Signal()
    wanted = Signal(str, int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = ""
        self.picture: Any = None  # the PIL picture the model sees
        self.heat: Any = None     # its Grad-CAM map for the class chosen
        self.back_button = named(QPushButton("← Images"), "backToGallery", "Back to the images")
        self.back_button.clicked.connect(self.back)
        self.title = ElidedLabel()
        self.caption = WrappingLabel()
        self.image = Picture()
        self.bars = TopBars()
        self.cam = named(QCheckBox("Grad-CAM overlay"), "camToggle", "Show the Grad-CAM overlay")
        self.cam.setChecked(True)
        self.cam.setToolTip("Where in the picture the model found the evidence for the class chosen")
        self.cam_class = named(QComboBox(), "camClass", "Grad-CAM of the class")
        self.cam_class.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.cam_class.setMinimumContentsLength(8)
        self.opacity = named(QSlider(Qt.Orientation.Horizontal), "camOpacity", "Overlay opacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setMinimumWidth(60)
        self.status = WrappingLabel()
        self.status.setStyleSheet("color: #6d4c00;")
        top = QHBoxLayout()
        top.addWidget(self.back_button)
        top.addWidget(self.title, 1)
        controls = QHBoxLayout()
        controls.addWidget(self.cam)
        controls.addWidget(self.cam_class, 1)
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.caption)
        lay.addWidget(self.image, 1)
        lay.addLayout(controls)
        lay.addWidget(self.bars)
        lay.addWidget(self.status)
        self.cam.toggled.connect(self._ask)
        self.cam_class.activated.connect(lambda _i: self._ask())
        self.opacity.valueChanged.connect(lambda _v: self._draw())

    def show_image(self, path: str, true: str | None, top: list[tuple[int, str, float]], true_class: int = -1) -> None:
        """`top`: (class, name, probability) likeliest first; `true`: the label's name (None: no label)."""
        self.path, self.picture, self.heat = path, None, None
        self.title.setText(path)
        guess = f"predicted <b>{top[0][1]}</b> ({top[0][2]:.1%})" if top else ""
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        self.caption.setText((f"true <b>{true}</b> · " if true else "") + guess
                             + " · the picture as the model sees it (resized and cropped)")
        self.bars.show_rows([(name, p, c == true_class) for c, name, p in top])
        self.cam_class.clear()
        for c, name, _ in top:
            self.cam_class.addItem(f"{name} (predicted)" if c == top[0][0] else name, c)
        if true_class >= 0 and true_class not in [c for c, _, _ in top]:
            self.cam_class.addItem(f"{true} (true)", true_class)
        self.status.setText("")
        self.image.show_pixmap(None, "Loading the picture...")
        self._ask()

    def target(self) -> int:
        return int(self.cam_class.currentData()) if self.cam_class.count() else 0

    def _ask(self) -> None:
        self.cam_class.setEnabled(self.cam.isChecked())
        self.opacity.setEnabled(self.cam.isChecked())
        if self.path:
            if self.cam.isChecked():
                self.status.setText("Computing the Grad-CAM overlay...")
            self.wanted.emit(self.path, self.target(), self.cam.isChecked())

    def show_picture(self, path: str, target: int, picture: Any, heat: Any) -> None:
        """The model's picture of `path` and its map for `target` (None: not asked for) arrived."""
        if path != self.path or (heat is not None and target != self.target()):
            return
        self.picture, self.heat = picture, heat
        if heat is not None and not heat.any():
            self.status.setText(f"Grad-CAM finds no evidence for {self.cam_class.currentText()} in this picture: "
                                "its map is empty.")
        elif heat is not None or not self.cam.isChecked():
            self.status.setText("")
        self._draw()

    def show_failure(self, message: str) -> None:
        self.status.setText(message)
        if self.picture is None:
            self.image.show_pixmap(None, "No picture")

    def _draw(self) -> None:
        if self.picture is None:
            return
        shown = self.picture
        if self.cam.isChecked() and self.heat is not None:
            from engine.results.saliency import overlay

            shown = overlay(self.picture, self.heat, self.opacity.value() / 100)
        self.image.show_pixmap(QPixmap.fromImage(to_qimage(shown)))
