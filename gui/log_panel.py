"""The run log: timestamped lines from the engine and the window, errors in red."""

from __future__ import annotations

import html
import time

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from engine.wording import printable

COLORS = {"info": "#222", "warning": "#b36b00", "error": "#c62828"}
MAX_LINES = 5000


class LogPanel(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.lines: list[str] = []  # plain text of what was written, newest last (bounded like the view)

    def write(self, text: str, level: str = "info") -> None:
        stamp = time.strftime("%H:%M:%S")
        for line in printable(text).rstrip("\n").splitlines() or [""]:  # a name's non-UTF-8 bytes as \xNN
            plain = f"{stamp}  {line}"
            self.lines.append(plain)
            color = COLORS.get(level, COLORS["info"])
            self.appendHtml(f"<span style='color:{color}; white-space:pre'>{html.escape(plain)}</span>")
        del self.lines[:-MAX_LINES]
