"""Work off the GUI thread, one idiom for all of it: a plain function run in a registered QThread.

The function gets a `TaskState` (as in Orange3's ``concurrent.py``): ``report(value)`` hands a partial result to
the GUI thread, ``is_interruption_requested()`` says whether to stop. Its return value arrives as `Task.returned`,
an exception as `Task.errored` (the exception object itself, so a receiver tells kinds apart by type), and
`Task.finished` always comes last, once the thread is done. The signals belong to the `Task`, which lives in the
GUI thread, so whatever is connected to them runs there, a plain function or lambda included. The function
never touches a widget, so it can be tested with a stand-in state and no thread (superqt's ``_qthreading``
keeps its signals apart from the work in the same way).

Every thread started here is registered: `running()` lists those still running (the tests fail on any left),
`join_running(deadline)` waits for them; quitting waits at most `QUIT_SECONDS` (then `gui.app` ends the process).
Python's cyclic garbage collector is run from the GUI thread only (`GuiThreadGarbageCollector`): left to
itself it runs in whichever thread happens to allocate, the training thread most of all, and a Qt object
destroyed there deadlocks against the GUI thread (seen: a panel freed by ``gc.collect`` mid-run). Once the
window is made (`gui.app`) and again once it has its plots (`freeze_once`), what lives is frozen (``gc.freeze``),
so these collections need not walk torch's, Qt's and pyqtgraph's modules.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()
_collector: list[GuiThreadGarbageCollector] = []  # one per process, made with the first task
_frozen: list[bool] = []  # `freeze_once` has run
QUIT_SECONDS = 5.0  # from "stop and quit" to the process gone: a batch that cannot be interrupted is left behind


def running() -> list[QThread]:
    # a thread deleted on the C++ side (deleteLater) may outlive it here as a wrapper: it runs no more
    return [t for t in list(_threads) if shiboken6.isValid(t) and t.isRunning()]


def join_running(deadline: float) -> bool:
    """Wait for the registered threads until `deadline` (`time.monotonic()`); True once none is running."""
    for thread in running():
        thread.quit()
        thread.wait(max(0, round((deadline - time.monotonic()) * 1000)))
    return not running()


class TaskState:
    """What the task's function gets: a way to report partial results and to see a stop request."""

    def __init__(self, report: Callable[[Any], None], stop: threading.Event) -> None:
        self.report = report
        self._stop = stop

    def is_interruption_requested(self) -> bool:
        return self._stop.is_set()


class _Runner(QObject):
    """Lives in the task's thread and calls the function there."""

    reported = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    done = Signal()

    def __init__(self, fn: Callable[[TaskState], Any], stop: threading.Event) -> None:
        super().__init__()
        self._fn = fn
        self._state = TaskState(self.reported.emit, stop)

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self._state)
        except BaseException as exc:  # noqa: BLE001 - handed to the GUI thread, never raised in this one
            self.errored.emit(exc)
        else:
            self.returned.emit(result)
        finally:
            self.done.emit()


class Task(QObject):
    """One call of `fn(state)` in its own thread."""

    reported = Signal(object)   # a partial result, in the order reported
    returned = Signal(object)   # fn's return value
    errored = Signal(object)    # the exception fn raised
    finished = Signal()         # always last: the thread's work is over

    def __init__(self, fn: Callable[[TaskState], Any], parent: QObject | None = None, name: str = "thaw-task",
                 stop: threading.Event | None = None) -> None:
        """`stop`: the event that `request_interruption` sets (one of the caller's own, e.g. the engine's stop
        flag), else a new one."""
        super().__init__(parent)
        if not _collector:
            _collector.append(GuiThreadGarbageCollector(QCoreApplication.instance()))
        self._stop = stop if stop is not None else threading.Event()
        self._runner = _Runner(fn, self._stop)
        self.thread = QThread()
        _threads.add(self.thread)
        self.thread.setObjectName(name)
        self._runner.moveToThread(self.thread)
        self.thread.started.connect(self._runner.run)
        for signal in ("reported", "returned", "errored"):  # signal to signal: queued into this object's thread
            getattr(self._runner, signal).connect(getattr(self, signal))
        # Direct: quit() is thread-safe, and a queued call would wait for the GUI thread, which may be in join().
        self._runner.done.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.finished.connect(self._thread_finished)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def request_interruption(self) -> None:
        self._stop.set()

    def join(self, timeout_ms: int = 30000) -> bool:
        """Wait for the thread to end; True once it has."""
        return self.thread.wait(timeout_ms)

    def _thread_finished(self) -> None:
        self.thread.wait()
        self.finished.emit()


class Latest(QObject):
    """Tasks for a question where only the newest answer counts (which images a folder holds): starting one
    makes the results of those still running be ignored; `shutdown` waits for them all."""

    returned = Signal(object)
    errored = Signal(object)

    def __init__(self, parent: QObject | None = None, name: str = "thaw-task") -> None:
        super().__init__(parent)
        self._name = name
        self._current: Task | None = None
        self._tasks: list[Task] = []

    def start(self, fn: Callable[[TaskState], Any]) -> Task:
        task = Task(fn, self, self._name)
        self._current = task
        self._tasks.append(task)
        task.returned.connect(lambda value, t=task: self._answer(t, self.returned, value))
        task.errored.connect(lambda exc, t=task: self._answer(t, self.errored, exc))
        task.finished.connect(lambda t=task: self._forget(t))
        task.start()
        return task

    def cancel(self) -> None:
        """Ignore the answer of the task running now (a newer question makes it moot)."""
        if self._current is not None:
            self._current.request_interruption()
        self._current = None

    def is_busy(self) -> bool:
        """A task whose answer counts is running."""
        return self._current is not None

    def shutdown(self) -> None:
        self.cancel()
        for task in list(self._tasks):
            task.join()

    def _answer(self, task: Task, signal: Any, value: Any) -> None:
        if task is self._current:
            self._current = None
            signal.emit(value)

    def _forget(self, task: Task) -> None:
        if task in self._tasks:
            self._tasks.remove(task)
            task.deleteLater()
        if task is self._current:  # finished without an answer (cannot happen: returned or errored come first)
            self._current = None


def freeze_once() -> None:
    """Put what lives now out of the collector's reach for good (``gc.freeze``): the imports (torch, Qt,
    pyqtgraph) and the window are ~450k objects, and a full collection walking them held the GUI thread ~270 ms
    mid-run; after, ~5 ms (bench/gui_responsiveness.py). Once per process: cyclic garbage alive at that moment is
    never collected, harmless once, but it would add up over the windows a test session makes."""
    if not _frozen:
        _frozen.append(True)
        gc.freeze()


class GuiThreadGarbageCollector(QObject):
    """Turns off Python's automatic cyclic garbage collection and runs it from a timer in the GUI thread instead,
    generation by generation, when the automatic one would have (as pyqtgraph's ``GarbageCollector`` does)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        counts = gc.get_count()
        for generation in range(3):
            if counts[generation] <= self.thresholds[generation]:
                break
            gc.collect(generation)
