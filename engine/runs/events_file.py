"""events.jsonl: every engine event of a run, one JSON object a line, appended as the run goes.

The process that writes the run folder (rank 0 under torchrun) writes it for every run, a single process's too.
Whoever follows a run from outside its process reads it as it grows (`EventsReader`): the window does, for a
run it started under torchrun, so that the plots, progress, log and summary look as they do for a run in its
own thread. The file only grows: a resumed run appends its own FitStarted and what follows. Batch events are
written in bunches at most `FLUSH_SECONDS` apart, the others at once; a reader leaves a line that has no
newline yet for its next read, so it never sees half an event.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import events as ev
from engine.io.ownership import RUN_PROJECT

FILENAME = "events.jsonl"
FLUSH_SECONDS = 0.25
_BY_NAME = {e.NAME: e for e in ev.EVENTS}


def to_line(event: Any) -> str:
    """One event as one line of JSON (NaN written as NaN, as Python's json reads it back)."""
    return json.dumps({"event": event.NAME, **dataclasses.asdict(event)}, separators=(",", ":")) + "\n"


def from_record(record: Any) -> Any | None:
    """The event a line's object holds; None for anything else (an event this Thaw does not know)."""
    if not isinstance(record, dict):
        return None
    kind = _BY_NAME.get(record.get("event"))
    if kind is None:
        return None
    names = {f.name for f in dataclasses.fields(kind)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in names}  # (JSON lists)
    try:
        return kind(**values)
    except TypeError:  # a field missing: not an event of this Thaw's
        return None


class EventsFile(ev.Handler):
    """The loop's callback that appends each event to ``<run folder>/events.jsonl``. Events that come before the
    run has written its first files (a warning while the data is read) wait for them: a run refused during its
    set-up leaves its folder empty, and the folder goes (`engine.runs.claim`)."""

    def __init__(self, run_dir: str | os.PathLike, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(run_dir) / FILENAME
        self._clock = clock
        self._pending: list[str] = []
        self._last = clock()

    def __call__(self, event: Any) -> None:
        self._pending.append(to_line(event))
        now = self._clock()
        if not isinstance(event, ev.BatchEnded) or now - self._last >= FLUSH_SECONDS:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Append what is pending (once the run folder holds the run's project)."""
        if not self._pending or not (self.path.parent / RUN_PROJECT).is_file():
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(self._pending))
        self._pending.clear()
        self._last = self._clock() if now is None else now


class EventsReader:
    """Reads a run's events.jsonl as it grows: each `read` returns the events appended since the last one."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / FILENAME
        self._offset = 0
        self._partial = b""

    def read(self) -> list[Any]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:  # not written yet
            return []
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        found = []
        for line in lines:
            try:
                event = from_record(json.loads(line))
            except ValueError:  # not JSON: not written by Thaw
                continue
            if event is not None:
                found.append(event)
        return found
