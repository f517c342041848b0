"""The first screen: open a demo, start from a folder of images, open a project, or a recent one.

It is painted before torch is imported (this module imports Qt and the window's settings only): the engine
loads in the background meanwhile (`gui/app.py`), and a choice made before it is ready waits for it. A folder
of images, a CSV list or a project file dropped onto it is taken as the matching choice.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui import settings as gui_settings
from gui.dialogs import PROJECT_SUFFIX, choose_folder, dropped_choice, open_file
from gui.naming import named
from gui.text import ElidedLabel

CHOICES = (("demo", "inductive", "Inductive demo", "Digits 5-9 from a model that learned 0-4: same domain, new task"),
           ("demo", "transductive", "Transductive demo", "Digits 0-4 as a poor scan: new domain, same task"),
           ("folder", "", "Start from a folder of images…", "One sub-folder per class (or a CSV list of path,label)"),
           ("open", "", "Open a project…", "A *.thaw.toml file"))


class StartPage(QWidget):
    """`chosen(kind, argument)`: ("demo", scenario), ("folder", path), ("open", path)."""

    chosen = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("startPage")
        self.setWindowTitle("Thaw")
        self.setAcceptDrops(True)
        self.resize(760, 480)
        content = QWidget()  # a readable width on a wide screen, centred
        content.setMaximumWidth(960)
        centred = QHBoxLayout(self)
        centred.addStretch(1)
        centred.addWidget(content, 100)
        centred.addStretch(1)
        outer = QVBoxLayout(content)
        outer.setContentsMargins(24, 16, 24, 16)
        title = QLabel("<h2>Thaw</h2>Fine-tune a pretrained network on your images: choose where to start.")
        title.setWordWrap(True)
        outer.addWidget(title)
        grid = QGridLayout()
        self.buttons: dict[tuple[str, str], QPushButton] = {}
        for i, (kind, arg, label, tip) in enumerate(CHOICES):
            name = f"start_{kind}_{arg}" if arg else f"start_{kind}"
            button = named(QPushButton(f"{label}\n{tip}"), name, label.rstrip("…"))
            button.setAccessibleDescription(tip)
            button.setMinimumHeight(64)
            button.clicked.connect(lambda _=False, k=kind, a=arg: self._choose(k, a))
            self.buttons[(kind, arg)] = button
            grid.addWidget(button, i // 2, i % 2)
        outer.addLayout(grid)
        outer.addWidget(QLabel("Recent projects (or drop a folder of images or a project file here):"))
        self.recent = named(QListWidget(), "recentProjects", "Recent projects")
        self.recent.itemActivated.connect(lambda item: self.chosen.emit("open", item.data(Qt.ItemDataRole.UserRole)))
        self.recent.setMaximumHeight(self.recent.fontMetrics().height() * 14)  # a list, not a blank wall
        outer.addWidget(self.recent, 1)
        outer.addStretch(0)
        self.status = ElidedLabel("Loading the engine (PyTorch)…")
        self.status.setObjectName("startStatus")
        outer.addWidget(self.status)
        self.show_recent()

    def show_recent(self) -> None:
        self.recent.clear()
        for path in gui_settings.recent_projects():
            item = QListWidgetItem(Path(path).name.removesuffix(PROJECT_SUFFIX))
            item.setToolTip(path)
            item.setData(Qt.ItemDataRole.UserRole, path)
            self.recent.addItem(item)
        if not self.recent.count():
            self.recent.addItem("(none yet)")
            self.recent.item(0).setFlags(Qt.ItemFlag.NoItemFlags)

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def _choose(self, kind: str, arg: str) -> None:
        if kind == "folder":
            arg = choose_folder(self, "Folder of images (one sub-folder per class)", None)
        elif kind == "open":
            arg = open_file(self, "Open project", None, f"Thaw projects (*{PROJECT_SUFFIX});;All files (*)")
        if arg:
            self.chosen.emit(kind, arg)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's names)
        if any(dropped_choice(u.toLocalFile()) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            choice = dropped_choice(url.toLocalFile())
            if choice:
                self.chosen.emit(*choice)
                return
