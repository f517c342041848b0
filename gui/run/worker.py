"""A training run in its own thread (`gui.tasks.Task`): the engine's events become Qt signals.

The work is a plain function, `train_task`, and the engine's events go through an `EventRelay`: both are tested
without a thread. The relay collects batch events and reports them as one list at most `MAX_EMITS_PER_SECOND`
times a second, so a fast loop cannot flood the window, and holds the loop while the run is paused. Stopping
only sets a flag: the engine honours it before the next layer and keeps the model trained so far.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine import events as ev
from engine.project import Project
from gui.tasks import Task, TaskState

MAX_EMITS_PER_SECOND = 10  # each one updates the progress bar, the labels and the plots' buffers


class EventRelay(ev.Handler):
    """The engine's callback, in the training thread: passes ``(name, payload)`` pairs to `report` (the task
    state's): each event by its NAME, batches as lists ("batches", throttled), pauses ("paused"); it keeps the
    FitEnded. `stop` is the run's stop flag."""

    def __init__(self, stop: threading.Event, clock: Callable[[], float] = time.monotonic) -> None:
        self.report: Callable[[tuple[str, Any]], None] = lambda item: None
        self.stop = stop
        self._clock = clock
        self._pending: list[ev.BatchEnded] = []
        self._last_emit = 0.0
        self._gate = threading.Condition()
        self._paused = False
        self.ended: ev.FitEnded | None = None
        self.batch_emits = 0  # how many batch lists were reported (for the responsiveness benchmark)

    def __call__(self, event: Any) -> None:
        super().__call__(event)
        self._wait_while_paused()

    def on_batch_ended(self, event: ev.BatchEnded) -> None:
        self._pending.append(event)
        now = self._clock()
        if now - self._last_emit >= 1.0 / MAX_EMITS_PER_SECOND:
            self.flush(now)

    def on_other(self, event: Any) -> None:
        """FitStarted, EpochEnded, LogMessage: passed on by name, after the batches before them."""
        self.flush()
        self.report((event.NAME, event))

    def on_fit_ended(self, event: ev.FitEnded) -> None:
        self.flush()
        self.ended = event

    def flush(self, now: float | None = None) -> None:
        """Report the batches collected so far, if any."""
        if self._pending:
            batch, self._pending = self._pending, []
            self.report(("batches", batch))
            self.batch_emits += 1
        self._last_emit = self._clock() if now is None else now

    # ------------------------------------------------------------ pausing, from any thread

    def pause(self) -> None:
        """Hold the loop at its next event (within one batch); the thread stays alive."""
        with self._gate:
            self._paused = True

    def resume(self) -> None:
        with self._gate:
            self._paused = False
            self._gate.notify_all()

    def release(self) -> None:
        """Wake a paused loop so that it sees the stop flag."""
        with self._gate:
            self._gate.notify_all()

    def is_paused(self) -> bool:
        return self._paused

    def _wait_while_paused(self) -> None:
        if not self._paused or self.stop.is_set():
            return
        self.flush()
        self.report(("paused", True))
        with self._gate:
            while self._paused and not self.stop.is_set():
                self._gate.wait(0.2)
        self.report(("paused", False))


def train_task(state: TaskState, relay: EventRelay, project: Project, run_dir: str | Path | None,
               resume: bool) -> ev.FitEnded:
    """The run itself (`engine.runs.folder.train`, or `resume` to continue the run in `run_dir`): the end
    event once the run folder is written. Anything that goes wrong is raised, for `Task.errored`."""
    from engine.runs import folder

    relay.report = state.report
    # Every core, as on the command line. A core was once left to the window, whose repaints then took ~60 % of
    # one (a loss plot re-ranging at every repaint); with that fixed they take ~20 %, and on 2 cores the run
    # trains at 0.86-0.93x the command line's speed instead of 0.71-0.76x, the window's p99 gap staying <= 26 ms
    # (bench/gui_responsiveness.py, docs/PERFORMANCE.md).
    try:
        go = folder.resume if resume else folder.train
        go(project, run_dir, callbacks=(relay,), stop=relay.stop)
    finally:
        relay.flush()
    if relay.ended is None:
        raise RuntimeError("training ended without reporting a result")
    return relay.ended


class TrainingRun(QObject):
    """One run: `train_task` in a `Task`, its reports turned into typed signals (all in the GUI thread)."""

    fit_started = Signal(object)     # FitStarted
    batches = Signal(list)           # list[BatchEnded], throttled
    epoch_ended = Signal(object)     # EpochEnded
    activity = Signal(object)        # LayerActivity: which layers learn, every N steps
    log = Signal(object)             # LogMessage
    paused_changed = Signal(bool)    # True once the loop actually holds, False when it goes on
    returned = Signal(object)        # FitEnded: ended normally, early or by a stop; the run folder is written
    errored = Signal(object)         # the exception; the run is over
    finished = Signal()              # always last: the thread is done

    can_pause = True

    def __init__(self, project: Project, run_dir: str | Path | None = None, parent: QObject | None = None,
                 resume: bool = False) -> None:
        super().__init__(parent)
        stop = threading.Event()
        self.relay = EventRelay(stop)
        self.task = Task(lambda state: train_task(state, self.relay, project, run_dir, resume), self,
                         "thaw-training", stop=stop)
        self.task.reported.connect(self._dispatch)
        self.task.returned.connect(self.returned)
        self.task.errored.connect(self.errored)
        self.task.finished.connect(self.finished)
        self._signals = {ev.FitStarted.NAME: self.fit_started, "batches": self.batches,
                         ev.EpochEnded.NAME: self.epoch_ended, ev.LogMessage.NAME: self.log,
                         ev.LayerActivity.NAME: self.activity,
                         "paused": self.paused_changed}

    def _dispatch(self, item: tuple[str, Any]) -> None:
        name, payload = item
        self._signals[name].emit(payload)

    def start(self) -> None:
        self.task.start()

    def is_running(self) -> bool:
        return self.task.is_running()

    def request_stop(self) -> None:
        """Stop before the current batch's next layer (also releases a pause)."""
        self.task.request_interruption()  # sets the relay's stop flag: the engine checks it between layers
        self.relay.release()

    def is_stop_requested(self) -> bool:
        return self.relay.stop.is_set()

    def pause(self) -> None:
        self.relay.pause()

    def resume(self) -> None:
        self.relay.resume()

    def is_paused(self) -> bool:
        return self.relay.is_paused()

    def join(self, timeout_ms: int = 30000) -> bool:
        """Stop the run and wait for its thread to end; True once it has."""
        self.request_stop()
        return self.task.join(timeout_ms)

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Wait for the thread to end (without stopping it); True once it has."""
        return self.task.join(timeout_ms)
