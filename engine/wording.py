"""How the command line and the window say times and failures: one wording for both."""

from __future__ import annotations

import math

UNKNOWN_TIME = "--:--"


def clock(seconds: float | None) -> str:
    """A duration or ETA as m:ss, or h:mm:ss from an hour on; "--:--" when it is not known."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return UNKNOWN_TIME
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def training_failed(exc: BaseException) -> str:
    """The message for an unexpected failure while training (not a `ThawError`: those speak for themselves)."""
    if isinstance(exc, MemoryError):
        return "training failed: out of memory; try a smaller batch size or image size"
    return f"training failed: {type(exc).__name__}: {exc}"


def count(n: int, noun: str) -> str:
    """"1 epoch", "2 epochs" (a noun that takes an s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def printable(text: str) -> str:
    """`text` with the bytes of a name that is not UTF-8 (surrogate escapes, as Python reads such a name from
    the disk) shown as ``\\xNN``: a log line or a label that would otherwise fail or drop them."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def transfer(done: int, total: int | None, bytes_per_second: float, eta_seconds: float | None) -> str:
    """A download's or a check's progress: "42% 41.0 of 97.8 MB, 2.1 MB/s, 0:27 left"."""
    pct = f"{100 * done / total:.0f}% " if total else ""
    of = f" of {total / 1e6:,.1f}" if total else ""
    left = f", {clock(eta_seconds)} left" if eta_seconds is not None else ""
    return f"{pct}{done / 1e6:,.1f}{of} MB, {bytes_per_second / 1e6:,.1f} MB/s{left}"
