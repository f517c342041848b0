"""One process at a time in a run folder: an OS lock on ``<run folder>/.lock`` while a run writes there.

`engine.runs.claim` takes it as it creates the folder, `engine.runs.folder.resume` before it changes anything, so
a second process resuming the same run (the command line and the window, or two terminals) is refused instead
of interleaving checkpoints. The OS frees the lock when its process ends, however it ends (a SIGKILL
included): a crashed run never leaves its folder locked. The file holds the holder's pid; a run that ends
removes it (while still holding it: a process that opened the old file meanwhile sees it is gone and takes
the new one instead, so two processes never both hold "the" lock).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from engine.errors import ThawError
from engine.io.ownership import LOCK_NAME


class RunLocked(ThawError):
    """Another process (or another run in this one) is training in the run folder."""


class RunLock:
    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise `RunLocked` at once (never waits). Taking a held lock again does nothing."""
        if self._fd is not None:
            return
        path = self.folder / LOCK_NAME
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                _lock(fd)
            except OSError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (pid {holder})" if holder else ""
                raise RunLocked(f"another Thaw run{who} is training in {self.folder}; wait for it to end or stop "
                                "it, then try again") from None
            if _is_the_file_at(fd, path):
                break
            _unlock(fd)  # its holder removed it as it ended: lock the file there now
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            with contextlib.suppress(OSError):  # Windows keeps an open file; it stays, unlocked
                (self.folder / LOCK_NAME).unlink()
            _unlock(fd)
        finally:
            os.close(fd)


def _is_the_file_at(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _read_pid(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:  # Windows refuses to read a region another process has locked
        return ""
    return text if text.isdigit() else ""


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
