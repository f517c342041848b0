"""The Suggest button by the presets: the engine's advisor (`engine.advice.rule.advise`) measures the project in a
background task, the checklist's column shows its bars and evidence, and Apply sets the suggested preset and
learning rates as one edit (one Undo step)."""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject

from engine.errors import ThawError
from engine.project import Project
from gui.tasks import Task


def measured_facts(project: Project) -> tuple:
    """What the advice depends on: the model, the weights and the images. Another value makes it stale."""
    d = project.data
    return (project.model.arch, project.model.weights, d.train, d.val, d.val_fraction, d.image_size,
            project.train.seed, project.train.optimizer)


class Advisor(QObject):
    """Connects the freeze panel's Suggest button and its advice column to the engine, for one window."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.panel = window.freeze_panel
        self.task: Task | None = None
        self.advice = None
        self._facts: tuple | None = None
        self.panel.suggest_requested.connect(self.suggest)
        self.panel.advice.apply_requested.connect(self.apply)
        window.history.changed.connect(self._check_stale)
        window.runs.running_changed.connect(lambda running: self.panel.advice.apply_button.setEnabled(
            not running and self.advice is not None and not self._stale()))

    def is_measuring(self) -> bool:
        return self.task is not None and self.task.is_running()

    def suggest(self) -> None:
        """Measure the project as it is now (a copy: edits meanwhile do not reach the task)."""
        from engine.advice.rule import advise

        if self.is_measuring():
            return
        project = self.window.project.copy()
        self._facts, self.advice = measured_facts(project), None
        stop = threading.Event()
        self.panel.advice.show_busy("Measuring...")
        self.panel.suggest_button.setEnabled(False)
        self.task = Task(lambda state: advise(project, stop, state.report), self, "thaw-advice", stop=stop)
        self.task.reported.connect(self.panel.advice.status.setText)
        self.task.returned.connect(self._answered)
        self.task.errored.connect(self._failed)
        self.task.finished.connect(self._finished)
        self.task.start()

    def _answered(self, advice) -> None:
        self.advice = advice
        self.panel.advice.show_advice(advice)
        self._check_stale()

    def _failed(self, exc: BaseException) -> None:
        text = str(exc) if isinstance(exc, (ThawError, InterruptedError)) else f"{type(exc).__name__}: {exc}"
        self.panel.advice.show_error(text)
        self.window.log(f"the advisor could not measure: {text}", "warning")

    def _finished(self) -> None:
        self.task.deleteLater()
        self.task = None
        self.panel.suggest_button.setEnabled(not self.panel.is_read_only())

    def _stale(self) -> bool:
        return self._facts is not None and measured_facts(self.window.project) != self._facts

    def _check_stale(self) -> None:
        if self.advice is not None and self._stale():
            self.panel.advice.mark_stale()

    def apply(self) -> None:
        """The suggestion's [freeze] and [train] settings, as one edit of the project."""
        if self.advice is None or self.window.is_running() or self._stale():
            return
        changes = {f"{section}.{key}": value for section, values in self.advice.plan.sections().items()
                   for key, value in values.items()}
        if self.advice.plan.scratch:
            changes["model.weights"] = "none"
        self.window.apply_settings(changes)
        self.window.log(f"applied the suggestion: {self.advice.plan.label} "
                        f"({', '.join(f'{k} = {v}' for k, v in changes.items())})")

    def stop_and_join(self) -> None:
        if self.task is not None:
            self.task.request_interruption()
            self.task.join()
