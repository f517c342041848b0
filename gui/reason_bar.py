"""Why Start is disabled, always in full: a bar above the layer checklist. The reason's key is a link that takes the
person to the field at fault (`go_to(key)`); the other reasons are listed in the tooltip and counted."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QWidget

from engine.errors import ProjectError
from gui.naming import named
from gui.text import WrappingLabel, breakable


class ReasonBar(QFrame):
    """Hidden while nothing stops a run."""

    go_to = Signal(str)  # a project key, e.g. "model.weights"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reasonBar")
        self.setStyleSheet("#reasonBar { background: #fdecea; border: 1px solid #e6a5a0; border-radius: 3px; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        self.label = WrappingLabel()
        self.label.setTextFormat(Qt.TextFormat.RichText)
        named(self.label, "startReason", "Why Start is disabled")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                           | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.label.linkActivated.connect(self.go_to)
        layout.addWidget(self.label, 1)
        self.reasons: list[ProjectError] = []
        self._plain = ""
        self.hide()

    def show_reasons(self, reasons: list[ProjectError]) -> None:
        self.reasons = list(reasons)
        self.setVisible(bool(reasons))
        if not reasons:
            self._plain = ""
            self.label.setText("")
            self.setToolTip("")
            return
        first = reasons[0]
        key = (f"<a href='{html.escape(first.key)}'>{html.escape(first.key)}</a>: " if first.key else "")
        more = f" (and {len(reasons) - 1} more: hover to see them)" if len(reasons) > 1 else ""
        self._plain = f"Can't start: {first}{more}"
        self.label.setText(f"<b>Can't start:</b> {key}{breakable(html.escape(first.problem))}<i>{more}</i>")
        self.setToolTip("\n".join(str(r) for r in reasons))

    def text(self) -> str:
        """The bar's text as plain text (what a person reads)."""
        return self._plain
