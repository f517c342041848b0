"""Ctrl-C while the process starts: never inside an import.

Importing torch takes seconds, and a KeyboardInterrupt raised inside it can land in the middle of a C extension's
initialisation (numpy's): the import then fails with an ImportError or a RecursionError instead, and the person
gets a screen of traceback for pressing Ctrl-C. `interrupts_wait_for_imports` installs a SIGINT handler that
raises KeyboardInterrupt as usual, except while an import is running: then the signal is sent again shortly, so
it is taken as soon as the import has finished (the entry point turns it into one line and exit 130).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

RETRY_SECONDS = 0.05


def _importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _on_sigint(_signum: int, frame: FrameType | None) -> None:
    if _importing(frame):
        later = threading.Timer(RETRY_SECONDS, signal.raise_signal, (signal.SIGINT,))
        later.daemon = True
        later.start()
        return
    raise KeyboardInterrupt


def interrupts_wait_for_imports() -> None:
    """From now on, Ctrl-C raises KeyboardInterrupt between imports, never inside one (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
