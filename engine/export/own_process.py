"""`export_run` in a process of its own, for a program that goes on using torch while it exports (the window).

``torch.export`` sets process-wide state: while it runs, torch's Python reference ops in every other thread
edit a process-wide dict unguarded, and a model built or trained beside it fails now and again with
``KeyError('custom')`` (the window's monkey test found it: a project checked while an export ran). In a
process of its own the export shares nothing with the window's threads; it is started with "spawn" (a fork of
a Qt program with threads is unsafe) and costs the seconds it takes to import torch.

The same arguments and the same outcomes as `export_run`: progress texts, the `ExportResult`, or the exception
it raised (`ThawError`, `VerificationFailed`, `ExportStopped`...). Setting `stop` asks the export to stop; if
this process ends, the export's process sees its pipe close and stops too (nothing written either way).
"""

from __future__ import annotations

import contextlib
import copy
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterable

from engine.errors import ThawError
from engine.export.bundle import FORMATS, ExportResult, export_run

_POLL_SECONDS = 0.1


def export_run_in_own_process(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                              formats: Iterable[str] = FORMATS, *, zipped: bool = False,
                              progress: Callable[[str], None] | None = None,
                              stop: threading.Event | None = None) -> ExportResult:
    if progress is not None:
        progress("starting the export's process")  # its imports take seconds: say something at once
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=_export, args=(theirs, os.fspath(run_dir), None if out is None else os.fspath(out), list(formats),
                              zipped), name="thaw-export", daemon=True)
    child.start()
    theirs.close()  # the child's end: once the child is gone, reading ours says so (EOFError)
    asked_to_stop = False
    try:
        while True:
            if stop is not None and stop.is_set() and not asked_to_stop:
                ours.send("stop")
                asked_to_stop = True
            if not ours.poll(_POLL_SECONDS):
                continue
            try:
                kind, value = ours.recv()
            except EOFError:
                child.join()
                raise RuntimeError(f"the export's process ended without a word (exit status {child.exitcode}); "
                                   "nothing was written") from None
            if kind == "progress":
                if progress is not None:
                    progress(value)
            elif kind == "returned":
                return value
            else:
                raise value
    finally:
        ours.close()
        child.join(timeout=30)


def _export(conn, run_dir: str, out: str | None, formats: list[str], zipped: bool) -> None:
    """In the export's process: run it, send what it says, stop when asked or when the pipe closes."""
    stop = threading.Event()

    def listen() -> None:
        with contextlib.suppress(EOFError, OSError):  # EOF: the program that asked is gone
            conn.recv()  # "stop"
        stop.set()

    threading.Thread(target=listen, daemon=True).start()
    try:
        result = export_run(run_dir, out, formats, zipped=zipped, progress=lambda text: conn.send(("progress", text)),
                            stop=stop)
    except BaseException as exc:  # noqa: BLE001 (sent to the caller, who raises it)
        conn.send(("errored", _sendable(exc)))
    else:
        conn.send(("returned", result))


def _sendable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling (a copy rebuilds it as unpickling would), else its words in an exception of
    a kind that does."""
    try:
        pickle.dumps(copy.copy(exc))
        return exc
    except Exception:  # noqa: BLE001 (any exception that cannot cross: said in words)
        kind = ThawError if isinstance(exc, ThawError) else RuntimeError
        return kind(f"{type(exc).__name__}: {exc}" if kind is RuntimeError else str(exc))
