"""Runs a project (`engine.runs.folder.train`: `fit` plus the run folder) in a QThread; its events become Qt signals.

In the style of superqt's ``_qthreading``: the signals live on a QObject moved to the thread, stopping only sets
a flag (the engine honours it within one batch and keeps the model trained so far), and an exception in the
thread is emitted as ``errored(message)``, never raised there. Batch events are throttled: they are collected
and emitted as one list at most ``MAX_EMITS_PER_SECOND`` times a second, so a fast loop cannot flood the GUI.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from engine.errors import ThawError
from engine.events import BatchEnded, EpochEnded, FitEnded, FitStarted, LogMessage
from engine.project import Project
from gui import threads

MAX_EMITS_PER_SECOND = 30


class TrainingWorker(QObject):
    """Lives in the training thread; every signal carries a plain dataclass from `engine.events`."""

    started = Signal(object)  # FitStarted
    batch_ended = Signal(list)  # list[BatchEnded], throttled
    epoch_ended = Signal(object)  # EpochEnded
    log = Signal(object)  # LogMessage
    finished = Signal(object)  # FitEnded: the run ended normally, stopped early or by the person
    errored = Signal(str)  # a readable message; the run is over
    paused_changed = Signal(bool)  # from the thread: True once the loop actually holds, False when it goes on
    done = Signal()  # always last, whatever happened: the thread may quit

    def __init__(self, project: Project, run_dir: str | Path | None = None, resume: bool = False) -> None:
        super().__init__()
        self._project = project
        self._run_dir = run_dir
        self._resume = resume  # continue the run in `run_dir` from its checkpoint (engine.runs.folder.resume)
        self._stop = threading.Event()
        self._pause = threading.Condition()
        self._paused = False
        self._pending: list[BatchEnded] = []
        self._last_emit = 0.0
        self._ended: list[FitEnded] = []
        self.batch_emits = 0  # how many batch_ended signals were sent (for the responsiveness benchmark)

    # ------------------------------------------------------------ control, from any thread

    def request_stop(self) -> None:
        """Ask the loop to stop after the current batch; also releases a pause."""
        self._stop.set()
        with self._pause:
            self._pause.notify_all()

    def is_stop_requested(self) -> bool:
        return self._stop.is_set()

    def pause(self) -> None:
        """Hold the loop at its next event (within one batch); the thread stays alive."""
        with self._pause:
            self._paused = True

    def resume(self) -> None:
        with self._pause:
            self._paused = False
            self._pause.notify_all()

    def is_paused(self) -> bool:
        return self._paused

    # ------------------------------------------------------------ the thread's work

    @Slot()
    def run(self) -> None:
        import torch

        threads = torch.get_num_threads()
        try:
            from engine.runs import folder as runs

            # Leave a core to the window: with every core busy in torch, its repaints wait their turn
            # (measured on 2 cores: p99 event-loop gap 95 -> 35 ms while fine-tuning the demo).
            torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
            go = runs.resume if self._resume else runs.train
            go(self._project, self._run_dir, callbacks=(self._on_event,), stop=self._stop)
        except ThawError as exc:
            self._flush()
            self.errored.emit(str(exc))
        except MemoryError:
            self._flush()
            self.errored.emit("out of memory: try a smaller batch size or image size")
        except Exception as exc:  # anything else still reaches the person as a message, with the details logged
            self._flush()
            self.log.emit(LogMessage(traceback.format_exc(), "error"))
            self.errored.emit(f"training failed: {type(exc).__name__}: {exc}")
        else:
            self._flush()
            if self._ended:
                self.finished.emit(self._ended[-1])
            else:
                self.errored.emit("training ended without reporting a result")
        finally:
            torch.set_num_threads(threads)
            self.done.emit()

    def _on_event(self, event: object) -> None:
        """The engine's callback, called in the training thread. Blocks here while paused."""
        if isinstance(event, BatchEnded):
            self._pending.append(event)
            now = time.monotonic()
            if now - self._last_emit >= 1.0 / MAX_EMITS_PER_SECOND:
                self._flush(now)
        else:
            self._flush()
            if isinstance(event, FitStarted):
                self.started.emit(event)
            elif isinstance(event, EpochEnded):
                self.epoch_ended.emit(event)
            elif isinstance(event, LogMessage):
                self.log.emit(event)
            elif isinstance(event, FitEnded):
                self._ended.append(event)
        self._wait_while_paused()

    def _flush(self, now: float | None = None) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self.batch_ended.emit(batch)
            self.batch_emits += 1
        self._last_emit = time.monotonic() if now is None else now

    def _wait_while_paused(self) -> None:
        if not self._paused or self._stop.is_set():
            return
        self._flush()
        self.paused_changed.emit(True)
        with self._pause:
            while self._paused and not self._stop.is_set():
                self._pause.wait(0.2)
        self.paused_changed.emit(False)


class TrainingRun(QObject):
    """One run: a worker in its own registered QThread. Start it, pause, resume, stop, and join it."""

    def __init__(self, project: Project, run_dir: str | Path | None = None, parent: QObject | None = None,
                 resume: bool = False):
        super().__init__(parent)
        self.worker = TrainingWorker(project, run_dir, resume)
        self.thread = threads.register(QThread())
        self.thread.setObjectName("thaw-training")
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        # Direct: quit() is thread-safe, and a queued call would wait for the GUI thread, which may be in join().
        self.worker.done.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def request_stop(self) -> None:
        self.worker.request_stop()

    def pause(self) -> None:
        self.worker.pause()

    def resume(self) -> None:
        self.worker.resume()

    def join(self, timeout_ms: int = 30000) -> bool:
        """Stop the run and wait for its thread to end; True once it has."""
        self.worker.request_stop()
        return self.thread.wait(timeout_ms)
