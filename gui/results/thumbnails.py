"""Thumbnails of image files, decoded off the GUI thread and kept in Qt's pixmap cache.

A view asks for the thumbnails it paints, so only visible images are ever decoded. Requests wait in a short
queue, newest first (scrolling fast, the images now on screen come before those scrolled past; the oldest
requests fall off), and one task at a time decodes them through `gui.pictures.decode` (the engine's one
decoder, the one training uses). Only paths wait in memory; the pixels live in `QPixmapCache`, which drops the least recently
used when it is full, and a dropped one is decoded again when it is painted again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap, QPixmapCache

from gui.pictures import decode
from gui.tasks import Task, TaskState

SIZE = 96  # pixels, the longer side
MAX_WAITING = 256  # requests kept; a few screens of thumbnails
CACHE_KB = 64 * 1024  # QPixmapCache's room (Qt's default, 10 MB, holds ~70 thumbnails of this size)


class Thumbnails(QObject):
    """`pixmap(path)`: the thumbnail if it is ready, else None (and it is decoded soon: `ready(path)`)."""

    ready = Signal(str)  # the thumbnail of this path is in the cache now (or it cannot be read: `failed`)

    def __init__(self, size: int = SIZE, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.failed: dict[str, str] = {}  # path -> why it cannot be shown
        self.decoded = 0  # thumbnails decoded so far (the tests and the benchmark read it)
        self._waiting: OrderedDict[str, None] = OrderedDict()
        self._decoding: set[str] = set()  # taken by the task, not yet in the cache
        self._lock = threading.Lock()
        self._task: Task | None = None
        QPixmapCache.setCacheLimit(max(QPixmapCache.cacheLimit(), CACHE_KB))

    def key(self, path: str) -> str:
        return f"thaw-thumb:{self.size}:{path}"

    def pixmap(self, path: str) -> QPixmap | None:
        found = QPixmapCache.find(self.key(path))
        if found is not None and not found.isNull():
            return found
        if path not in self.failed:
            self._request(path)
        return None

    def _request(self, path: str) -> None:
        with self._lock:
            if path in self._decoding:
                return
            self._waiting[path] = None
            self._waiting.move_to_end(path)
            while len(self._waiting) > MAX_WAITING:
                self._waiting.popitem(last=False)
        if self._task is None:
            self._start()

    def _start(self) -> None:
        self._task = task = Task(self._work, self, "thaw-thumbnails")
        task.reported.connect(self._decoded)
        task.finished.connect(self._done)
        task.start()

    def _work(self, state: TaskState) -> None:
        """Decode the waiting thumbnails, newest first, until none waits (or a stop)."""
        while not state.is_interruption_requested():
            with self._lock:
                if not self._waiting:
                    return
                path, _ = self._waiting.popitem(last=True)
                self._decoding.add(path)
            try:
                state.report((path, decode(path, self.size), ""))
            except Exception as exc:  # noqa: BLE001 - any file may be anything: it is shown as unreadable
                state.report((path, None, f"cannot be read: {exc}"))

    def _decoded(self, item: tuple[str, QImage | None, str]) -> None:
        path, image, why = item
        with self._lock:
            self._decoding.discard(path)
        if image is None:
            self.failed[path] = why
        else:
            QPixmapCache.insert(self.key(path), QPixmap.fromImage(image))
            self.decoded += 1
        self.ready.emit(path)

    def _done(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.deleteLater()
        with self._lock:
            waiting = bool(self._waiting)
        if waiting:
            self._start()

    def is_busy(self) -> bool:
        return self._task is not None

    def forget_waiting(self) -> None:
        """Drop the requests not yet decoded (the view shows other images now)."""
        with self._lock:
            self._waiting.clear()

    def shutdown(self) -> None:
        """Stop decoding and wait for the task (the window is closing)."""
        self.forget_waiting()
        task = self._task
        if task is not None:
            task.request_interruption()
            task.join()
