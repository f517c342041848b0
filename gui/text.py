"""Labels that never resize the window: a long path or message wraps (at '/' and '\\' too) or is elided,
with the full text in the tooltip, instead of widening its dock and with it the window."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

ZERO_WIDTH_SPACE = "\u200b"


def breakable(text: str) -> str:
    """`text` with a break opportunity after each path separator, so that a word-wrapped label can wrap a path."""
    return text.replace("/", "/" + ZERO_WIDTH_SPACE).replace("\\", "\\" + ZERO_WIDTH_SPACE)


class WrappingLabel(QLabel):
    """A word-wrapped label whose minimum width does not grow with its text (paths wrap at separators)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        """Plain text gets its break opportunities here; rich text brings its own (`breakable` on its parts)."""
        super().setText(text if self.textFormat() == Qt.TextFormat.RichText else breakable(text))

    def text(self) -> str:  # the text as set, without the break opportunities
        return super().text().replace(ZERO_WIDTH_SPACE, "")

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(0, super().minimumSizeHint().height())


class ElidedLabel(QLabel):
    """One line, elided to the width it is given (in the middle, so both ends of a path show); the full text
    is its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802
        self._full = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        return self._full

    def shown(self) -> str:
        """What is drawn now (elided when the full text does not fit)."""
        return super().text()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(0, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(0, self.width() - 2)
        super().setText(self.fontMetrics().elidedText(self._full, self._mode, width) if width else self._full)
