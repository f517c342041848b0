"""Answers the window's questions as a person would, in tests and in the scripts they run: each question box (a
`QMessageBox` with the question icon, `QMessageBox.question`'s too) gets a button clicked once it shows. The boxes
and the clicks are real; nothing of Qt is replaced."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox


class Answers(QObject):
    """Clicks `reply["button"]` (read when the box shows; its escape button where it has no such button) on
    every question box and appends the box's title to `reply["asked"]`, until `remove`."""

    def __init__(self, reply: dict) -> None:
        super().__init__()
        self.reply = reply
        QApplication.instance().installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if (event.type() == QEvent.Type.Show and isinstance(obj, QMessageBox)
                and obj.icon() == QMessageBox.Icon.Question):
            self.reply["asked"].append(obj.windowTitle())
            QTimer.singleShot(0, obj, lambda: self._click(obj))
        return False

    def _click(self, box: QMessageBox) -> None:
        button = box.button(self.reply["button"]) or box.escapeButton()
        if button is None:
            box.reject()
        else:
            button.click()

    def remove(self) -> None:
        QApplication.instance().removeEventFilter(self)
