"""The window's one training run: starting it, pausing, stopping (within seconds when the window quits), and
showing its progress as it goes.

It hands a copy of the project to a `TrainingRun` (or starts a `ProcessRun`: the command line under torchrun,
followed through its run folder) and turns the run's signals into the progress bar, the banner above the set-up,
the speed and device labels, the plots, the log and, at the end, the summary card; both kinds of run send the
same signals. The window decides when a run may start (the engine's preflight) and locks its set-up while
`running` says so.
"""

from __future__ import annotations

import contextlib
import shlex
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QMessageBox, QProgressBar, QWidget

from engine.errors import ThawError
from engine.events import EpochEnded, FitEnded, FitStarted, LayerActivity, LogMessage
from engine.project import Project
from engine.runs import checkpoint
from engine.wording import clock, count, training_failed
from gui.naming import named
from gui.run.process import ProcessRun
from gui.run.summary import RunSummary
from gui.run.worker import TrainingRun
from gui.tasks import QUIT_SECONDS

# The banner above the set-up while a run is going (`RunController._show` chooses).
RUNNING = "Training is running: the set-up and the layer checklist are read-only until it ends."
PAUSED = "Training is paused: Resume or Stop it; the set-up and the layer checklist stay read-only until it ends."


def _banner() -> QLabel:
    label = QLabel(RUNNING)
    label.setWordWrap(True)
    label.setStyleSheet("background: #fff4d6; color: #6d4c00; border: 1px solid #e0c36b; padding: 4px;")
    label.hide()
    return label


def ask_to_stop(parent: QWidget) -> bool:
    """Closing the window mid-run: True when the person says to stop the run and quit."""
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    box = QMessageBox(QMessageBox.Icon.Question, "Training is running", "A run is in progress. Stop it and quit?\n"
                      "Its run folder keeps the last completed epoch, to continue from (Run > Continue a Stopped "
                      "Run).", yes | no, parent)
    box.setObjectName("stopAndQuitBox")
    box.setDefaultButton(no)
    box.exec()
    box.deleteLater()
    return box.clickedButton() is box.button(yes)


class RunController(QObject):
    """Owns the run (at most one) and the widgets that show it."""

    running_changed = Signal(bool)  # True when a run starts, False once its thread has ended
    paused_changed = Signal(bool)
    now = Signal(object)  # where the run is, in epochs (1.5: half-way through the second); None once it ended
    activity = Signal(object)  # LayerActivity: which layers learn (the checklist shows it)

    def __init__(self, plots: Callable[[], object], log: Callable[[str, str], None],
                 show_error: Callable[[str, str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._plots, self._log, self._show_error = plots, log, show_error
        self.run: TrainingRun | ProcessRun | None = None
        self.last_result: FitEnded | None = None
        self.last_error: BaseException | None = None
        self._fit_started: FitStarted | None = None
        self._latest: TrainingRun | ProcessRun | None = None  # the run whose signals count (a joined run's may
        # still arrive)
        self._at = ""  # where the run is, as the progress bar says it (without "paused" or "stopping")
        self._held = False  # the loop holds: paused (from the run's own word, not from the request)
        self._over = False  # the run has said how it ended: the progress bar says that, as it is
        self.quit_by: float | None = None  # once quitting: when the process must be gone (`time.monotonic()`)
        self.progress = named(QProgressBar(), "runProgress", "Training progress")
        self.progress.setMinimumWidth(360)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Not running")
        self.progress.setValue(0)
        self.speed_label = QLabel("")
        self.device_label = QLabel("device: -")
        self.summary = RunSummary()
        self.banner = _banner()  # above the set-up, while a run is going

    def is_running(self) -> bool:
        return self.run is not None and self.run.is_running()

    def is_paused(self) -> bool:
        return self.is_running() and self.run.is_paused()

    def can_pause(self) -> bool:
        """A run in this process can pause; one in other processes cannot."""
        return self.is_running() and self.run.can_pause

    # ------------------------------------------------------------ control

    def launch(self, project: Project, resume_dir: str | Path | None = None) -> None:
        """Start a run of `project`: a new one, or the run in `resume_dir` continued."""
        self._plots().clear()
        if resume_dir is not None:  # a continued run shows its whole history, not only what comes now
            with contextlib.suppress(ThawError):  # the run itself says what is wrong with the folder
                self._plots().add_history(checkpoint.read(resume_dir, tensors=False).history)
        what = f"continuing the run in {resume_dir}" if resume_dir else f"starting {project.name}"
        self._follow(TrainingRun(project.copy(), resume_dir, resume=resume_dir is not None, parent=self),
                     f"{what}: {project.model.arch}, {count(project.train.epochs, 'epoch')}")

    def launch_processes(self, project: Project, command: list[str], run_dir: Path, processes: int,
                         cleanup: Callable[[], None]) -> None:
        """Start `command` (the command line under torchrun, `processes` in all), whose rank 0 writes `run_dir`,
        and show it as a run in this process is shown; `cleanup` once it has ended."""
        self._plots().clear()
        self._follow(ProcessRun(command, run_dir, self, cleanup),
                     f"starting {project.name} in {processes} processes: {shlex.join(command)}")

    def _follow(self, run: TrainingRun | ProcessRun, what: str) -> None:
        self.summary.hide()
        self.last_result = self.last_error = self._fit_started = None
        self._held = self._over = False
        self.run = self._latest = run
        for signal, slot in ((run.fit_started, self._on_started), (run.batches, self._on_batches),
                             (run.epoch_ended, self._on_epoch), (run.log, self._on_log),
                             (run.activity, self._on_activity),
                             (run.returned, self._on_returned), (run.errored, self._on_errored),
                             (run.paused_changed, self._on_paused)):
            signal.connect(lambda value, r=run, s=slot: s(value) if r is self._latest else None)
        run.finished.connect(lambda r=run: self._on_finished(r))
        self._show("Preparing data and model...")
        self.progress.setRange(0, 0)
        self.banner.show()
        self._log(what, "info")
        run.start()
        self.running_changed.emit(True)

    def pause(self) -> None:
        if self.is_running():
            self.run.pause()

    def resume(self) -> None:
        if self.is_running():
            self.run.resume()

    def stop(self) -> None:
        if self.is_running() and not self.run.is_stop_requested():
            self.run.request_stop()
            self._show()
            where = "before the next layer" if self.run.can_pause else "after the current batch, on every process"
            self._log(f"stop requested: stopping {where}", "info")

    def stop_and_join(self, timeout_ms: int = 30000) -> bool:
        """Stop the run (if any) and wait for its thread at most `timeout_ms`; True when no thread is left
        running (False: a batch that cannot be interrupted is still going, and the run with it)."""
        if self.run is None:
            return True
        joined = self.run.join(timeout_ms)
        if joined:
            self._on_finished(self.run)
        return joined

    def stop_to_quit(self, seconds: float = QUIT_SECONDS) -> None:
        """Quitting: stop the run (if any) and wait for it at most `seconds`, which sets `quit_by` (gui.app's
        exit path keeps to it too). A batch that cannot be interrupted is left running: the process ends
        without it, and its run folder keeps the last completed epoch."""
        self.quit_by = time.monotonic() + seconds
        if self.run is None:
            return
        self._log("stopping the run before quitting", "info")
        if not self.stop_and_join(round(seconds * 1000)):
            self._log(f"the run did not stop within {seconds:g} s: Thaw quits without it; its run folder keeps "
                      "the last completed epoch", "warning")

    # ------------------------------------------------------------ what the run says

    def _on_started(self, event: FitStarted) -> None:
        self._fit_started = event
        self._plots().span_run(event.epochs, event.steps_per_epoch)
        self.progress.setRange(0, max(1, event.epochs * event.steps_per_epoch))
        self.progress.setValue(0)
        self._show(f"Epoch 1/{event.epochs} · step 0/{event.steps_per_epoch} · ETA {clock(None)}")
        processes = f" x {event.world_size} processes" if event.world_size > 1 else ""
        self.device_label.setText(f"device: {event.device}{processes}")
        cache = " (feature cache)" if event.feature_cache else ""
        self._log(f"training on {event.device}{processes}{cache}: {event.train_size} train / {event.val_size} val images, "
                  f"{len(event.classes)} classes, {event.trainable_params:,} of {event.total_params:,} "
                  f"parameters trainable; run folder {event.run_dir}", "info")

    def _on_batches(self, events: list) -> None:
        self._plots().add_batches(events)
        last = events[-1]
        epochs = self._fit_started.epochs if self._fit_started else last.epoch
        self.progress.setValue(min(self.progress.maximum(), last.global_step))
        self._show(f"Epoch {last.epoch}/{epochs} · step {last.step}/{last.steps_per_epoch} · "
                   f"ETA {clock(last.eta_seconds)}")
        self.speed_label.setText(f"{last.images_per_second:,.0f} images/s")
        self.now.emit(last.epoch - 1 + last.step / last.steps_per_epoch)

    def _on_activity(self, event: LayerActivity) -> None:
        self._plots().add_activity(event)
        self.activity.emit(event)

    def _on_epoch(self, event: EpochEnded) -> None:
        self._plots().add_epoch(event)
        best = " (best)" if event.is_best else ""
        self._log(f"epoch {event.epoch}/{event.epochs}: train loss {event.train_loss:.4f} acc "
                  f"{event.train_accuracy:.1%} · val loss {event.val_loss:.4f} acc {event.val_accuracy:.1%}{best} · "
                  f"{event.seconds:.1f}s, {event.images_per_second:,.0f} images/s", "info")

    def _on_log(self, message: LogMessage) -> None:
        self._log(message.text, message.level)

    def _on_paused(self, paused: bool) -> None:
        self._log("paused" if paused else "resumed", "info")
        self._held = paused
        self._show()
        self.paused_changed.emit(paused)

    def _show(self, at: str | None = None) -> None:
        """Say where the run is (`at`, else where it was last said) on the progress bar, and what it is doing
        there and on the banner: running, paused or stopping. The one place the run's state is put in words."""
        self._at = self._at if at is None else at
        if self._over:
            return
        stopping = self.run is not None and self.run.is_stop_requested()
        self.progress.setFormat(self._at + ("  (stopping...)" if stopping else "  (paused)" if self._held else ""))
        self.banner.setText(PAUSED if self._held and not stopping else RUNNING)

    def _on_returned(self, result: FitEnded) -> None:
        self.last_result = result
        self.summary.show_result(result)
        self._plots().redraw()
        self._log(f"run ended: best val accuracy {result.best_val_accuracy:.1%}, final "
                  f"{result.final_val_accuracy:.1%}, {clock(result.seconds)}, frozen weights "
                  f"{'unchanged' if result.frozen_verified else 'CHANGED'}; results in {result.run_dir}", "info")
        how = ("Stopped" if result.stopped_by_user else "Stopped early" if result.stopped_early else "Done")
        self._over = True
        self.progress.setFormat(f"{how} after {count(result.epochs_completed, 'epoch')} · best val "
                                f"{result.best_val_accuracy:.1%}")

    def _on_errored(self, exc: BaseException) -> None:
        """A `ThawError` says what is wrong in its own words (nothing was trained); anything else is a crash,
        logged with its traceback."""
        self.last_error = exc
        if isinstance(exc, ThawError):
            message = str(exc)
        else:
            self._log("".join(traceback.format_exception(exc)), "error")
            message = training_failed(exc)
        self._over = True
        self.progress.setFormat("Failed")
        self._show_error("Training failed", message)

    def _on_finished(self, run: TrainingRun) -> None:
        """The run's thread has ended (its own signal, or `stop_and_join`, whichever comes first)."""
        if run is not self.run:
            return
        self.run = None
        run.wait()
        self.banner.hide()
        self.now.emit(None)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.running_changed.emit(False)
