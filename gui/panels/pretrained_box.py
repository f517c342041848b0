"""Getting pretrained weights onto this machine from the Model tab: import a file downloaded elsewhere, or
download the selected architecture's (only when the person clicks Download).

Both run in a `Task` (a 2.5 GB file takes a while to hash or fetch) with progress, speed and time left, and can
be cancelled; the engine (`engine.model.pretrained`) checks the file's hash and that it loads before keeping it,
and keeps nothing otherwise. `arrived(arch)` says whose pretrained file is now on this machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from engine.io.download import Progress
from engine.io.weights import SUFFIXES
from engine.model import pretrained, zoo
from engine.wording import transfer
from gui.dialogs import open_file
from gui.flow_layout import FlowLayout
from gui.naming import named
from gui.tasks import Task
from gui.text import WrappingLabel


def format_size(n: int | None) -> str:
    if not n:
        return "size unknown"
    return f"{n / 1e6:.0f} MB" if n >= 1e7 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


class PretrainedBox(QWidget):
    arrived = Signal(str)   # the architecture whose pretrained file is now on this machine
    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.arch: str | None = None
        self.task: Task | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        buttons = FlowLayout(spacing=6)  # wraps in a narrow dock instead of widening it
        self.import_button = named(QPushButton("Import weights file…"), "importWeights",
                                   "Import a downloaded pretrained weights file")
        self.import_button.setToolTip("Copy a torchvision weights file downloaded on another machine into "
                                      f"{zoo.checkpoints_dir()}, after checking its hash and that it loads")
        self.download_button = named(QPushButton("Download"), "downloadWeights", "Download the pretrained weights")
        self.cancel_button = named(QPushButton("Cancel"), "cancelWeights", "Cancel the download")
        for button in (self.import_button, self.download_button, self.cancel_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.progress = named(QProgressBar(), "weightsProgress", "Download progress")
        self.progress.setTextVisible(True)
        self.progress.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # its text never widens
        layout.addWidget(self.progress)
        self.status = named(WrappingLabel(), "weightsStatus", "What the download or import did")
        layout.addWidget(self.status)
        self.import_button.clicked.connect(self._choose_file)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button.clicked.connect(self.cancel)
        self._show_running(False)

    # ------------------------------------------------------------ state

    def set_arch(self, arch: str | None, info: zoo.ArchInfo | None) -> None:
        """The architecture selected: Download offers its file when it is a torchvision one not here yet."""
        self.arch = arch
        offer = (info is not None and arch != zoo.DEMO_ARCH and not zoo.is_timm(arch) and not info.weights_cached)
        self.download_button.setVisible(offer)
        if offer:
            self.download_button.setText(f"Download ({format_size(info.weights_size_bytes)})")
            self.download_button.setToolTip(f"Download {info.weights_file} from {pretrained.url(arch)} into "
                                            f"{zoo.checkpoints_dir()} (checked by its hash before it is kept)")

    def is_busy(self) -> bool:
        return self.task is not None

    def cancel(self) -> None:
        if self.task is not None:
            self.task.request_interruption()

    def shutdown(self) -> None:
        """Cancel what runs and wait for it (nothing is kept): the window is closing."""
        if self.task is not None:
            self.task.request_interruption()
            self.task.join()

    def _show_running(self, running: bool, what: str = "") -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.import_button.setEnabled(not running)
        self.download_button.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)
            self.progress.setFormat(what)
            self.status.setText("")

    # ------------------------------------------------------------ the work

    def _choose_file(self) -> None:
        patterns = " ".join(f"*{s}" for s in SUFFIXES)
        path = open_file(self, "Import a pretrained weights file", None, f"Weights ({patterns});;All files (*)")
        if path:
            self.start_import(path)

    def start_import(self, path: str) -> None:
        """Check `path` (its hash says whose file it is) and copy it into the torch hub cache."""
        self._run(lambda report, stop: pretrained.import_file(path, progress=report, stop=stop),
                  "checking the file's hash")

    def start_download(self) -> None:
        """Fetch the selected architecture's pretrained file (the person clicked Download)."""
        if self.arch is not None:
            arch = self.arch
            self._run(lambda report, stop: (arch, pretrained.fetch(arch, progress=report, stop=stop)),
                      f"connecting to {pretrained.url(arch)}")

    def _run(self, fn: Callable[[Callable[[Progress], None], threading.Event], tuple], what: str) -> None:
        stop = threading.Event()
        self.task = Task(lambda state: fn(state.report, stop), self, name="thaw-weights", stop=stop)
        self.task.reported.connect(self._progressed)
        self.task.returned.connect(self._done)
        self.task.errored.connect(self._failed)
        self.task.finished.connect(self._finished)
        self._show_running(True, what)
        self.busy_changed.emit(True)
        self.task.start()

    def _progressed(self, p: Progress) -> None:
        if p.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * p.done / p.total))
        self.progress.setFormat(transfer(p.done, p.total, p.bytes_per_second, p.eta_seconds))

    def _done(self, result: tuple) -> None:
        arch, target = result
        mine = "" if arch == self.arch else f" (the file is {arch}'s)"
        self.status.setText(f"{arch}'s pretrained weights are on this machine{mine}: {target}")
        self.arrived.emit(arch)

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(str(exc))

    def _finished(self) -> None:
        self.task.deleteLater()
        self.task = None
        self._show_running(False)
        self.busy_changed.emit(False)
