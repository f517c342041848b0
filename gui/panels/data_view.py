"""What the data panel shows about a scanned folder: class bars, thumbnails, skipped files; and the scan task.

Scanning opens every image (``engine.data.scan`` verifies each file), so it runs off the GUI thread as a
`gui.tasks` task; thumbnails are decoded small in the same task as `QImage` (thread-safe) and become pixmaps on
the GUI side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPalette, QPixmap
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

from engine.project import Project
from engine.sources import Sources, scan_sources
from gui.naming import named
from gui.pictures import decode
from gui.tasks import TaskState

THUMB_SIZE = 56
THUMBS_PER_CLASS = 3
MAX_THUMBS = 30


@dataclass
class ScanResult:
    """A scan of the project's sources (`engine.sources.scan_sources`) and a few thumbnails of its classes."""

    sources: Sources
    thumbnails: list[tuple[str, str, QImage]] = field(default_factory=list)   # (class, path, image)


def load_thumbnail(path: str, size: int = THUMB_SIZE) -> QImage:
    """The image as the model sees it before resizing (`gui.pictures.decode`), at thumbnail size; a null image
    when it cannot be read."""
    try:
        return decode(path, size)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return QImage()


def scan_task(state: TaskState, project: Project) -> ScanResult:
    """Off the GUI thread (`gui.tasks`): scan the sources once, then decode a few thumbnails per class."""
    result = ScanResult(scan_sources(project))
    s = result.sources.train
    if s is None:
        return result
    per_class = max(1, min(THUMBS_PER_CLASS, MAX_THUMBS // max(1, len(s.classes))))
    taken: dict[int, int] = {}
    for sample in s.samples:
        if state.is_interruption_requested() or len(result.thumbnails) >= MAX_THUMBS:
            break
        if taken.get(sample.label, 0) >= per_class:
            continue
        image = load_thumbnail(sample.path)
        if not image.isNull():
            taken[sample.label] = taken.get(sample.label, 0) + 1
            result.thumbnails.append((s.classes[sample.label], sample.path, image))
    return result


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
        self.toggle = named(QToolButton(), "skippedToggle", "Show the skipped files")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._open)
        self.list = named(QListWidget(), "skippedList", "Skipped files")
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
