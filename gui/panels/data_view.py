"""What the data panel shows about a scanned folder: class bars, thumbnails, skipped files; and the scan thread.

Scanning opens every image (``engine.data.scan`` verifies each file), so it runs in a registered `QThread`;
thumbnails are decoded small in the same thread as `QImage` (thread-safe) and become pixmaps on the GUI side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, QThread, Signal
from PySide6.QtGui import QImage, QImageReader, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.data import Scan, scan
from engine.errors import ThawError

THUMB_SIZE = 56
THUMBS_PER_CLASS = 3
MAX_THUMBS = 30


@dataclass
class ScanResult:
    train: Scan | None = None
    val: Scan | None = None
    error: str | None = None            # why the training source cannot be used
    val_error: str | None = None        # why the validation source cannot be used
    thumbnails: list[tuple[str, str, QImage]] = field(default_factory=list)   # (class, path, image)


def load_thumbnail(path: str, size: int = THUMB_SIZE) -> QImage:
    """Decode an image at thumbnail size (JPEG readers scale while decoding, so big photos stay cheap)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid():
        reader.setScaledSize(full.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


class ScanThread(QThread):
    """Scans the training (and validation) source once, then loads a few thumbnails per class."""

    done = Signal(object, object)   # (this thread, ScanResult), delivered to the GUI thread

    def __init__(self, train: Path, val: Path | None, parent=None) -> None:
        super().__init__(parent)
        self.train, self.val = train, val

    def run(self) -> None:
        result = ScanResult()
        try:
            result.train = scan(self.train)
        except ThawError as exc:
            result.error = str(exc)
        except OSError as exc:  # e.g. a folder that cannot be listed
            result.error = f"cannot read {self.train}: {exc}"
        if self.val is not None and not self.isInterruptionRequested():
            try:
                result.val = scan(self.val)
            except ThawError as exc:
                result.val_error = str(exc)
            except OSError as exc:
                result.val_error = f"cannot read {self.val}: {exc}"
        if result.train is not None:
            self._thumbnails(result)
        self.done.emit(self, result)

    def _thumbnails(self, result: ScanResult) -> None:
        s = result.train
        per_class = max(1, min(THUMBS_PER_CLASS, MAX_THUMBS // max(1, len(s.classes))))
        taken: dict[int, int] = {}
        for sample in s.samples:
            if self.isInterruptionRequested() or len(result.thumbnails) >= MAX_THUMBS:
                return
            if taken.get(sample.label, 0) >= per_class:
                continue
            image = load_thumbnail(sample.path)
            if not image.isNull():
                taken[sample.label] = taken.get(sample.label, 0) + 1
                result.thumbnails.append((s.classes[sample.label], sample.path, image))


class ClassBars(QWidget):
    """Horizontal bars, one per class: name, a bar as long as its share of the largest class, the count."""

    ROW = 18

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.counts: dict[str, int] = {}
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_counts(self, counts: dict[str, int]) -> None:
        self.counts = dict(counts)
        self.setFixedHeight(max(1, len(self.counts)) * self.ROW + 4)
        self.setToolTip("\n".join(f"{k}: {v}" for k, v in self.counts.items()))
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(240, max(1, len(self.counts)) * self.ROW + 4)

    def paintEvent(self, _event) -> None:
        if not self.counts:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        fm = p.fontMetrics()
        name_w = min(max(fm.horizontalAdvance(n) for n in self.counts) + 8, self.width() // 3)
        count_w = fm.horizontalAdvance(str(max(self.counts.values()))) + 8
        bar_w = max(10, self.width() - name_w - count_w - 4)
        top = max(self.counts.values()) or 1
        bar_color = pal.color(QPalette.ColorRole.Highlight)
        for i, (name, n) in enumerate(self.counts.items()):
            y = 2 + i * self.ROW
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            p.drawText(QRectF(0, y, name_w - 6, self.ROW), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(name, Qt.TextElideMode.ElideMiddle, name_w - 6))
            w = bar_w * n / top
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(bar_color)
            p.drawRoundedRect(QRectF(name_w, y + 3, max(w, 1), self.ROW - 6), 2, 2)
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            p.drawText(QRectF(name_w + w + 4, y, count_w, self.ROW), Qt.AlignmentFlag.AlignVCenter, str(n))
        p.end()


class ThumbnailStrip(QScrollArea):
    """A horizontal strip of small sample images, each with its class in the tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(THUMB_SIZE + 22)
        self.labels: list[QLabel] = []
        self.set_images([])

    def set_images(self, images: list[tuple[str, str, QImage]]) -> None:
        inner = QWidget()
        row = QHBoxLayout(inner)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.labels = []
        for cls, path, image in images:
            label = QLabel()
            label.setFixedSize(THUMB_SIZE, THUMB_SIZE)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setPixmap(QPixmap.fromImage(image))
            label.setToolTip(f"{cls}\n{path}")
            label.setStyleSheet("background: palette(base); border: 1px solid palette(mid);")
            row.addWidget(label)
            self.labels.append(label)
        row.addStretch(1)
        self.setWidget(inner)


class SkippedList(QWidget):
    """A collapsed "N files skipped" header that opens into the list of files and reasons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._open)
        self.list = QListWidget()
        self.list.setVisible(False)
        layout.addWidget(self.toggle)
        layout.addWidget(self.list)
        self.set_skipped([])

    def set_skipped(self, skipped: list[tuple[str, str]]) -> None:
        self.list.clear()
        for path, reason in skipped:
            item = QListWidgetItem(f"{Path(path).name} — {reason}")
            item.setToolTip(path)
            self.list.addItem(item)
        n = len(skipped)
        row = self.list.sizeHintForRow(0) if n else 0
        self.list.setFixedHeight(min(120, n * row + 2 * self.list.frameWidth() + 2))
        self.toggle.setText(f"{n} file{'s' if n != 1 else ''} skipped")
        self.setVisible(n > 0)
        if n == 0:
            self.toggle.setChecked(False)

    def _open(self, on: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.list.setVisible(on)
