"""Evaluating a run's model on a labelled folder (or its own held-out split) in the background: a progress bar
with a Cancel button while it runs; the engine writes the evaluation beside the run
(`engine.results.evaluation.evaluate_run`: the run folder for its own split, ``evaluations/`` for another) and
a cancelled one writes nothing."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from gui.naming import named
from gui.tasks import Task, TaskState


class Evaluating(QWidget):
    """Hidden until `start`; then `done(folder | None)` (None: cancelled) or `failed(message)`."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.progress = named(QProgressBar(), "evaluationProgress", "Evaluation progress")
        self.progress.setTextVisible(True)
        self.cancel_button = named(QPushButton("Cancel"), "cancelEvaluation", "Cancel the evaluation")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.progress, 1)
        lay.addWidget(self.cancel_button)
        self.task: Task | None = None
        self._stop = threading.Event()
        self.cancel_button.clicked.connect(self.cancel)
        self.hide()

    def is_running(self) -> bool:
        return self.task is not None

    def start(self, run_dir: Path, source: str | None) -> bool:
        """Evaluate the model of `run_dir` on `source` (None: the run's own held-out split); False while
        another evaluation runs."""
        if self.task is not None:
            return False
        self._stop = stop = threading.Event()
        where = "its own held-out images" if source is None else Path(source).name

        def work(state: TaskState) -> Path | None:
            from engine.results.evaluation import evaluate_run
            from engine.results.predict import load_run

            result = evaluate_run(load_run(run_dir), source, stop=stop,
                                  on_batch=lambda done, total: state.report((done, total)))
            return None if result is None else result.folder

        self.task = task = Task(work, self, "thaw-evaluate", stop=stop)
        task.reported.connect(self._reported)
        task.returned.connect(self.done)
        task.errored.connect(lambda exc: self.failed.emit(str(exc) or type(exc).__name__))
        task.finished.connect(self._finished)
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"Evaluating on {where}...")
        self.cancel_button.setEnabled(True)
        self.show()
        task.start()
        return True

    def _reported(self, value: tuple[int, int]) -> None:
        done, total = value
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"Evaluating: {done:,} of {total:,} images")

    def cancel(self) -> None:
        if self.task is not None:
            self.task.request_interruption()
            self.cancel_button.setEnabled(False)
            self.progress.setFormat("Cancelling...")

    def _finished(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.deleteLater()
        self.hide()

    def shutdown(self) -> None:
        if self.task is not None:
            self.task.request_interruption()
            self.task.join()
