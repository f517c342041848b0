"""Every QThread the GUI starts is registered here, so the app (and the tests) can tell none is left running."""

from __future__ import annotations

import weakref

import shiboken6
from PySide6.QtCore import QThread

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()


def register(thread: QThread) -> QThread:
    _threads.add(thread)
    return thread


def running() -> list[QThread]:
    # a thread deleted on the C++ side (deleteLater) may outlive it here as a wrapper: it runs no more
    return [t for t in list(_threads) if shiboken6.isValid(t) and t.isRunning()]
