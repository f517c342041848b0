"""A run in several processes: the command line under torchrun in a `QProcess`, followed through its run folder.

The window stays one process. It starts ``python main.py train PROJECT --out RUN --nproc-per-node N`` (never
its own command line, which would open a window per process) and reads RUN/events.jsonl as rank 0 appends to
it (`engine.runs.events_file.EventsReader`), turning the events into the same signals as a `TrainingRun`, so
the controller shows both alike. Stop sends SIGINT to torchrun's agent, which passes it on to the workers:
they stop after the same batch and rank 0 saves. Pausing is not offered: the processes cannot wait on the
window. The run's one error is the last ``error:`` line the command writes.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from engine import events as ev
from engine.errors import ThawError
from engine.runs.events_file import EventsReader

POLL_MS = 150  # how often the events file is read: at most ~7 updates a second, as light as the thread's 30


class RunFailed(ThawError):
    """The command's own words for how it failed (it names the rank that failed first)."""


class ProcessRun(QObject):
    """One run of `command`, whose rank 0 writes `run_dir`; `cleanup` is called once the process has ended."""

    fit_started = Signal(object)     # FitStarted
    batches = Signal(list)           # list[BatchEnded], as read
    epoch_ended = Signal(object)     # EpochEnded
    log = Signal(object)             # LogMessage (the run's, and the command's own lines on stderr)
    activity = Signal(object)        # LayerActivity: which layers learn, every N steps
    paused_changed = Signal(bool)    # never: a run in other processes does not pause
    returned = Signal(object)        # FitEnded: ended normally, early or by a stop; the run folder is written
    errored = Signal(object)         # RunFailed; the run is over
    finished = Signal()              # always last: the processes are gone

    can_pause = False

    def __init__(self, command: list[str], run_dir: str | Path, parent: QObject | None = None,
                 cleanup: Callable[[], None] = lambda: None) -> None:
        super().__init__(parent)
        self.command, self.run_dir = list(command), Path(run_dir)
        self._cleanup = cleanup
        self.reader = EventsReader(run_dir)
        self.ended: ev.FitEnded | None = None
        self.error = ""
        self._stderr = b""
        self._stop_requested = self._done = False
        self.process = QProcess(self)
        self.process.readyReadStandardOutput.connect(self.process.readAllStandardOutput)  # rank 0's progress lines
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self._signals = {ev.FitStarted: self.fit_started, ev.EpochEnded: self.epoch_ended, ev.LogMessage: self.log,
                         ev.LayerActivity: self.activity}

    def start(self) -> None:
        self.process.start(self.command[0], self.command[1:])
        self.timer.start()

    def is_running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def poll(self) -> None:
        """Pass on what rank 0 has appended to the events file since the last look."""
        pending: list[ev.BatchEnded] = []
        for event in self.reader.read():
            if isinstance(event, ev.BatchEnded):
                pending.append(event)
                continue
            if pending:
                self.batches.emit(pending)
                pending = []
            if isinstance(event, ev.FitEnded):
                self.ended = event
            elif type(event) in self._signals:
                self._signals[type(event)].emit(event)
        if pending:
            self.batches.emit(pending)

    def _read_stderr(self) -> None:
        self._stderr += bytes(self.process.readAllStandardError().data())
        *lines, self._stderr = self._stderr.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("error: "):
                self.error = line[len("error: "):]
            elif line.strip():
                self.log.emit(ev.LogMessage(line.strip(), "info"))

    # ------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Stop after the current batch, on every process (torchrun passes the signal on); rank 0 saves."""
        if not self.is_running() or self._stop_requested:
            return
        self._stop_requested = True
        pid = self.process.processId()
        if pid <= 0:  # still starting: nothing trained yet to save
            self.process.kill()
        elif sys.platform == "win32":  # pragma: no cover - no POSIX signals there
            self.process.terminate()
        else:
            os.kill(pid, signal.SIGINT)

    def is_stop_requested(self) -> bool:
        return self._stop_requested

    def pause(self) -> None:
        """Not offered for a run in other processes (`can_pause`)."""

    resume = pause

    def is_paused(self) -> bool:
        return False

    def join(self, timeout_ms: int = 30000) -> bool:
        """Stop the run and wait for its processes to end; True once they have."""
        self.request_stop()
        return self.wait(timeout_ms)

    def wait(self, timeout_ms: int = 30000) -> bool:
        return not self.is_running() or self.process.waitForFinished(timeout_ms)

    # ------------------------------------------------------------ the end

    def _on_error(self, error: Any) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.error = f"could not start {self.command[0]}: {self.process.errorString()}"
            self._on_finished(-1)

    def _on_finished(self, code: int, _status: Any = None) -> None:
        if self._done:
            return
        self._done = True
        self.timer.stop()
        self._read_stderr()
        self.poll()
        self._cleanup()
        if self.ended is not None and code in (0, 130):
            self.returned.emit(self.ended)
        else:
            self.errored.emit(RunFailed(self.error or f"the run ended with exit status {code} without saying why; "
                                        f"its run folder is {self.run_dir}"))
        self.finished.emit()
