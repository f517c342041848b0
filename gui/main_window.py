"""The main window: assembles the set-up panels, the layer checklist, the plots and the log.

It edits one `Project` and hands a copy of it to a `TrainingRun`; it owns no training logic.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import project as projects
from engine.errors import ThawError
from engine.events import EpochEnded, FitEnded, FitStarted, LogMessage
from engine.preflight import blocking, preflight
from engine.project import SUFFIX, Project
from gui import settings as gui_settings
from gui.log_panel import LogPanel
from gui.run.summary import RunSummary
from gui.run.worker import TrainingRun

if TYPE_CHECKING:
    from gui.plots.training import TrainingPlots

FILE_FILTER = f"Thaw projects (*{SUFFIX});;All files (*)"
DEMOS = (("inductive", "Inductive demo: digits 5-9 (same domain, new task)"),
         ("transductive", "Transductive demo: poorly scanned digits 0-4 (new domain, same task)"))
LOCKED_BANNER = "Training is running: the set-up and the layer checklist are read-only until it ends."


def _eta(seconds: float) -> str:
    if not seconds or seconds != seconds or seconds < 0:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _banner() -> QLabel:
    label = QLabel(LOCKED_BANNER)
    label.setWordWrap(True)
    label.setStyleSheet("background: #fff4d6; color: #6d4c00; border: 1px solid #e0c36b; padding: 4px;")
    label.hide()
    return label


def _head_in_features(model, head_paths) -> int | None:
    """Width of the features the new head receives: the input size of its first layer."""
    if not head_paths:
        return None
    for module in model.get_submodule(head_paths[0]).modules():
        width = getattr(module, "in_features", None) or getattr(module, "in_channels", None)
        if width:
            return int(width)
    return None


def _panel(module: str, name: str) -> QWidget:
    return getattr(importlib.import_module(module), name)()


class MainWindow(QMainWindow):
    project_loaded = Signal()
    run_finished = Signal()  # the run's thread has ended (after finished or errored)

    def __init__(self, project: Project | None = None, path: str | Path | None = None) -> None:
        super().__init__()
        self.resize(1400, 900)
        self.project = Project()
        self.path: Path | None = None
        self.dirty = False
        self.run: TrainingRun | None = None
        self.last_result: FitEnded | None = None
        self.last_error: str | None = None
        self.error_box: QMessageBox | None = None
        self._classes: list[str] = []
        self._tree_key: tuple | None = None
        self._fit_started: FitStarted | None = None
        self._run_t0 = 0.0

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_panels()
        self._build_status_bar()
        self._restore_layout()
        self.set_project(project if project is not None else Project(), path)

    # ------------------------------------------------------------------ building the window

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        return action

    def _build_actions(self) -> None:
        S = QKeySequence.StandardKey
        self.new_action = self._action("&New", self.new_project, S.New, "Start a new, empty project")
        self.open_action = self._action("&Open...", self.open_dialog, S.Open, "Open a *.thaw.toml project")
        self.save_action = self._action("&Save", self.save, S.Save, "Save the project")
        self.save_as_action = self._action("Save &As...", self.save_as_dialog, S.SaveAs, "Save under a new name")
        self.quit_action = self._action("&Quit", self.close, S.Quit)
        self.start_action = self._action("Start", self.start, "Ctrl+R", "Train the project")
        self.pause_action = self._action("Pause", self.pause, tip="Pause after the current batch")
        self.resume_action = self._action("Resume", self.resume, tip="Continue the paused run")
        self.stop_action = self._action("Stop", self.stop, "Ctrl+.",
                                        "Stop after the current batch; the model trained so far is kept")
        self.continue_action = self._action("Continue a Stopped Run...", self.continue_dialog,
                                            tip="Resume a stopped or crashed run from its folder's last checkpoint")
        self.demo_actions = {}
        for name, label in DEMOS:
            action = QAction(label, self)
            action.triggered.connect(lambda _=False, n=name: self.open_demo(n))
            self.demo_actions[name] = action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.new_action, self.open_action])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        file_menu.addActions([self.save_action, self.save_as_action])
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        run_menu = bar.addMenu("&Run")
        run_menu.addActions([self.start_action, self.pause_action, self.resume_action, self.stop_action])
        run_menu.addSeparator()
        run_menu.addAction(self.continue_action)
        demo_menu = bar.addMenu("&Demo")
        demo_menu.addActions(list(self.demo_actions.values()))
        self.view_menu = bar.addMenu("&View")
        self._refresh_recent_menu()

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Training")
        tb.setObjectName("trainingToolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addActions([self.start_action, self.pause_action, self.resume_action, self.stop_action])
        tb.addSeparator()
        self.progress = QProgressBar()
        self.progress.setMinimumWidth(360)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Not running")
        self.progress.setValue(0)
        tb.addWidget(self.progress)
        tb.addSeparator()
        self.start_reason = QLabel()
        self.start_reason.setStyleSheet("color: #c62828; padding-left: 6px;")
        self.start_reason.setWordWrap(False)
        tb.addWidget(self.start_reason)

    def _build_panels(self) -> None:
        # Set-up panels: a dock of tabs on the left.
        self.setup_panels = self._make_setup_panels()
        self.setup_tabs = QTabWidget()
        for title, panel in self.setup_panels.items():
            self.setup_tabs.addTab(panel, title)
        self.setup_banner = _banner()
        setup = QWidget()
        lay = QVBoxLayout(setup)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.setup_banner)
        lay.addWidget(self.setup_tabs)
        self.setup_dock = self._dock("Set-up", "setupDock", setup, Qt.DockWidgetArea.LeftDockWidgetArea)

        # Centre: the layer checklist.
        self.freeze_panel = self._make_freeze_panel()
        self.setCentralWidget(self.freeze_panel)  # it marks itself read-only during a run

        # Right: summary of the last run above the live plots.
        self.summary = RunSummary()
        self._plots = None
        self._plots_placeholder = QLabel("Loading plots...")
        self._plots_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        right = QWidget()
        self._plots_layout = lay = QVBoxLayout(right)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(self._plots_placeholder, 1)
        self.plots_dock = self._dock("Training", "plotsDock", right, Qt.DockWidgetArea.RightDockWidgetArea)

        # Bottom: the log.
        self.log_panel = LogPanel()
        self.log_dock = self._dock("Log", "logDock", self.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.setup_dock, self.plots_dock], [380, 560], Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [150], Qt.Orientation.Vertical)

    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _make_setup_panels(self) -> dict[str, QWidget]:
        """Model, Data, Head and Training panels; each edits the project and says what is wrong with it."""
        self.model_panel = _panel("gui.panels.model_panel", "ModelPanel")
        self.data_panel = _panel("gui.panels.data_panel", "DataPanel")
        self.head_panel = _panel("gui.panels.head_panel", "HeadPanel")
        self.training_panel = _panel("gui.panels.training_panel", "TrainingPanel")
        panels = {"Model": self.model_panel, "Data": self.data_panel, "Head": self.head_panel,
                  "Training": self.training_panel}
        for panel in panels.values():
            panel.changed.connect(self._project_edited)
            panel.problems_changed.connect(self.update_start_state)
        self.data_panel.classes_changed.connect(self._classes_changed)
        return panels

    def _make_freeze_panel(self) -> QWidget:
        panel = _panel("gui.freeze.panel", "FreezePanel")
        panel.changed.connect(self._freeze_edited)
        return panel

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.device_label = QLabel("device: -")
        self.speed_label = QLabel("")
        bar.addPermanentWidget(self.speed_label)
        bar.addPermanentWidget(self.device_label)

    # ------------------------------------------------------------------ the project

    @property
    def plots(self) -> TrainingPlots:
        """The live plots, made on first use or just after the window's first paint: importing pyqtgraph is
        ~0.8 s that the first paint need not wait for (bench/startup.py)."""
        if self._plots is None:
            from gui.plots.training import TrainingPlots

            self._plots = TrainingPlots()
            self._plots_layout.replaceWidget(self._plots_placeholder, self._plots)
            self._plots_placeholder.deleteLater()
            self._plots.show()  # a widget added to a shown window stays hidden until told
        return self._plots

    def event(self, event: QEvent) -> bool:
        """After the window's first paint, make the plots (see `plots`)."""
        handled = super().event(event)
        if event.type() == QEvent.Type.UpdateRequest and self._plots is None:
            QTimer.singleShot(0, self, self._make_plots)
        return handled

    def _make_plots(self) -> None:
        self.plots  # noqa: B018 (the property makes them)

    def set_project(self, project: Project, path: str | Path | None = None) -> None:
        """Show `project` in every panel; `path` is its file (None for a new, unsaved one)."""
        self.project = project
        self.path = Path(path) if path else None
        self._tree_key = None
        self._classes = []
        for panel in self.setup_panels.values():
            panel.set_project(project)
        self.freeze_panel.set_freeze_settings(project.freeze)
        self._rebuild_tree()
        self.dirty = False
        self._update_title()
        self.update_start_state()
        self.device_label.setText(f"device: {project.train.device}")
        self.project_loaded.emit()

    def _project_edited(self) -> None:
        self.dirty = True
        self._update_title()
        self._rebuild_tree()
        self.update_start_state()

    def _freeze_edited(self) -> None:
        """The checklist wrote its edit into `project.freeze` itself."""
        self._project_edited()

    def _classes_changed(self, classes: list) -> None:
        self._classes = list(classes)
        self.head_panel.set_num_classes(len(self._classes))
        self._rebuild_tree()
        self.update_start_state()

    def _rebuild_tree(self) -> None:
        """Rebuild the checklist from the engine's skeleton when the architecture, head or classes change."""
        head = self.project.head
        num_classes = max(len(self._classes), 2)
        kept = head.kind == "keep"
        classes = list(self._classes) if kept and self._classes else None  # a kept head shows the data's outputs
        key = (self.project.model.arch, head.kind, tuple(head.hidden), head.dropout, num_classes,
               tuple(classes or ()))
        if key == self._tree_key:
            return
        self._tree_key = key
        try:
            from engine.model.assemble import skeleton

            assembled = skeleton(self.project, num_classes, classes)
        except (ThawError, ImportError) as exc:
            self.freeze_panel.set_model(None)
            self.log(f"cannot show the layers: {exc}", "warning")
            return
        self.freeze_panel.set_model(assembled.model, assembled.head_paths, head_kept=kept)
        self.head_panel.set_in_features(_head_in_features(assembled.model, assembled.head_paths))

    def problems(self) -> list[str]:
        """Why the project cannot run now, as readable lines (empty when it can)."""
        found = [str(p) for p in blocking(preflight(self.project))]
        for panel in self.setup_panels.values():
            found.extend(str(p) for p in panel.problems())
        return list(dict.fromkeys(found))

    def update_start_state(self) -> None:
        running = self.is_running()
        found = [] if running else self.problems()
        self.start_action.setEnabled(not running and not found)
        if found:
            reason = f"Can't start: {found[0]}" + (f" (+{len(found) - 1} more)" if len(found) > 1 else "")
            self.start_reason.setText(reason)
            self.start_reason.setToolTip("\n".join(found))
            self.start_action.setToolTip("Can't start:\n" + "\n".join(found))
        else:
            self.start_reason.setText("")
            self.start_reason.setToolTip("")
            self.start_action.setToolTip("Train the project")
        paused = running and self.run.worker.is_paused()
        self.pause_action.setEnabled(running and not paused)
        self.resume_action.setEnabled(running and paused)
        self.stop_action.setEnabled(running)
        for action in (self.new_action, self.open_action, self.recent_menu.menuAction(), self.continue_action,
                       *self.demo_actions.values()):
            action.setEnabled(not running)

    def _update_title(self) -> None:
        name = self.path.name if self.path else (self.project.name or "untitled")
        self.setWindowTitle(f"{name}{'*' if self.dirty else ''} — Thaw")

    # ------------------------------------------------------------------ New / Open / Save

    def maybe_save(self) -> bool:
        """Before losing unsaved changes: ask to save them. False when the person cancels."""
        if not self.dirty:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to {self.windowTitle().split(' — ')[0].rstrip('*')}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def _busy(self, title: str) -> bool:
        """True (with a message) while a run is going: the project it trains cannot be replaced under it."""
        if self.is_running():
            self.show_error(title, "A run is in progress. Stop it (or wait until it ends), then try again.")
        return self.is_running()

    def new_project(self) -> None:
        if not self._busy("Cannot start a new project") and self.maybe_save():
            self.set_project(Project())
            self.log("new project")

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        start = str(self.path.parent) if self.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, FILE_FILTER)
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path: str | Path, ask: bool = True) -> bool:
        """Open a project file; a bad file is shown as a message and the current project stays."""
        if self._busy("Cannot open a project") or (ask and not self.maybe_save()):
            return False
        try:
            project = projects.load(path)
        except ThawError as exc:
            self.show_error("Cannot open project", str(exc))
            if not Path(path).exists():
                gui_settings.forget_recent_project(str(Path(path).resolve()))
                self._refresh_recent_menu()
            return False
        self.set_project(project, path)
        self.remember_opened(path)
        return True

    def remember_opened(self, path: str | Path) -> None:
        """The project file at `path` is open: add it to the recent list and the log."""
        gui_settings.add_recent_project(path)
        self._refresh_recent_menu()
        self.log(f"opened {path}")

    def open_demo(self, scenario: str) -> bool:
        from engine.demo.scenarios import ensure_demo

        if self._busy("Cannot open the demo") or not self.maybe_save():
            return False
        try:
            path = ensure_demo(scenario)
        except ThawError as exc:
            self.show_error("Cannot build the demo", str(exc))
            return False
        return self.open_path(path, ask=False)

    def save(self) -> bool:
        if self.path is None:
            return self.save_as_dialog()
        return self.save_to(self.path)

    def save_as_dialog(self) -> bool:
        start = str(self.path) if self.path else f"{self.project.name or 'untitled'}{SUFFIX}"
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", start, FILE_FILTER)
        return self.save_to(path) if path else False

    def save_to(self, path: str | Path) -> bool:
        path = Path(path)
        if not path.name.endswith(SUFFIX):
            path = path.with_name(path.name.removesuffix(".toml") + SUFFIX)
        try:
            saved = projects.save(self.project, path)
        except (ThawError, OSError) as exc:
            self.show_error("Cannot save project", f"{path}: {exc}")
            return False
        # The saved copy's relative paths point at the same places from the new folder.
        for key in projects.PATH_KEYS:
            self.project.set(key, saved.get(key))
        self.project.base_dir = saved.base_dir
        self.path = path
        self.dirty = False
        self._update_title()
        gui_settings.add_recent_project(path)
        self._refresh_recent_menu()
        self.log(f"saved {path}")
        return True

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = gui_settings.recent_projects()
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(recent) and not self.is_running())

    # ------------------------------------------------------------------ running

    def is_running(self) -> bool:
        return self.run is not None and self.run.is_running()

    def continue_dialog(self) -> None:
        start = str(self.project.resolve(self.project.train.out_dir)) if self.project.train.out_dir else ""
        folder = QFileDialog.getExistingDirectory(self, "Continue the run in folder", start)
        if folder:
            self.continue_run(folder)

    def continue_run(self, run_dir: str | Path) -> bool:
        """Show the run's own project (read-only while it runs) and resume the run from its checkpoint."""
        if self._busy("Cannot continue a run") or not self.maybe_save():
            return False
        try:
            project = projects.load(Path(run_dir) / "project.thaw.toml")
        except ThawError as exc:
            self.show_error("Cannot continue the run", f"{run_dir} is not a run folder: {exc}")
            return False
        self.set_project(project)
        return self._launch(run_dir)

    def start(self) -> bool:
        """Train the project in a new run folder."""
        return self._launch(None)

    def _launch(self, resume_dir: str | Path | None) -> bool:
        """Start a run: a new one, or the run in `resume_dir` continued."""
        if self.is_running():
            return False
        found = self.problems()
        if found:
            self.update_start_state()
            self.show_error("Cannot start", "\n".join(found))
            return False
        self.plots.clear()
        self.summary.hide()
        self.last_result = None
        self.last_error = None
        self._fit_started = None
        self._run_t0 = time.monotonic()
        self.run = TrainingRun(self.project.copy(), resume_dir, resume=resume_dir is not None, parent=self)
        worker = self.run.worker
        worker.started.connect(self._on_started)
        worker.batch_ended.connect(self._on_batches)
        worker.epoch_ended.connect(self._on_epoch)
        worker.log.connect(self._on_log)
        worker.finished.connect(self._on_finished)
        worker.errored.connect(self._on_errored)
        worker.paused_changed.connect(self._on_paused)
        self.run.thread.finished.connect(self._on_thread_finished)
        self.progress.setFormat("Preparing data and model...")
        self.progress.setRange(0, 0)
        what = f"continuing the run in {resume_dir}" if resume_dir else f"starting {self.project.name}"
        self.log(f"{what}: {self.project.model.arch}, {self.project.train.epochs} epoch(s)")
        self.run.start()
        self._set_locked(True)
        return True

    def pause(self) -> None:
        if self.is_running():
            self.run.pause()
            self.update_start_state()

    def resume(self) -> None:
        if self.is_running():
            self.run.resume()
            self.update_start_state()

    def stop(self) -> None:
        if self.is_running() and not self.run.worker.is_stop_requested():
            self.run.request_stop()
            self.progress.setFormat(self.progress.format() + "  (stopping...)")
            self.log("stop requested: finishing the current batch")

    def stop_and_join(self, timeout_ms: int = 30000) -> bool:
        """Stop a run (if any) and wait for its thread; True when no thread is left running."""
        if self.run is None:
            return True
        joined = self.run.join(timeout_ms)
        if joined:
            self._on_thread_finished()
        return joined

    def _set_locked(self, locked: bool) -> None:
        for panel in self.setup_panels.values():
            panel.set_read_only(locked)
        self.freeze_panel.set_read_only(locked)
        self.setup_banner.setVisible(locked)
        self.setup_dock.setWindowTitle("Set-up (read-only while training)" if locked else "Set-up")
        self.update_start_state()
        self._refresh_recent_menu()

    def _on_started(self, event: FitStarted) -> None:
        self._fit_started = event
        self.progress.setRange(0, max(1, event.epochs * event.steps_per_epoch))
        self.progress.setValue(0)
        self.progress.setFormat(f"Epoch 1/{event.epochs} · step 0/{event.steps_per_epoch} · ETA --:--")
        self.device_label.setText(f"device: {event.device}")
        cache = " (feature cache)" if event.feature_cache else ""
        self.log(f"training on {event.device}{cache}: {event.train_size} train / {event.val_size} val images, "
                 f"{len(event.classes)} classes, {event.trainable_params:,} of {event.total_params:,} "
                 f"parameters trainable; run folder {event.run_dir}")

    def _on_batches(self, events: list) -> None:
        self.plots.add_batches(events)
        last = events[-1]
        epochs = self._fit_started.epochs if self._fit_started else last.epoch
        self.progress.setValue(min(self.progress.maximum(), last.global_step))
        stopping = "  (stopping...)" if self.run and self.run.worker.is_stop_requested() else ""
        self.progress.setFormat(f"Epoch {last.epoch}/{epochs} · step {last.step}/{last.steps_per_epoch} · "
                                f"ETA {_eta(last.eta_seconds)}{stopping}")
        self.speed_label.setText(f"{last.images_per_second:,.0f} images/s")

    def _on_epoch(self, event: EpochEnded) -> None:
        self.plots.add_epoch(event)
        best = " (best)" if event.is_best else ""
        self.log(f"epoch {event.epoch}/{event.epochs}: train loss {event.train_loss:.4f} acc "
                 f"{event.train_accuracy:.1%} · val loss {event.val_loss:.4f} acc {event.val_accuracy:.1%}{best} · "
                 f"{event.seconds:.1f}s, {event.images_per_second:,.0f} images/s")

    def _on_log(self, message: LogMessage) -> None:
        self.log(message.text, message.level)

    def _on_paused(self, paused: bool) -> None:
        self.log("paused" if paused else "resumed")
        if paused:
            self.progress.setFormat(self.progress.format() + "  (paused)")
        self.update_start_state()

    def _on_finished(self, result: FitEnded) -> None:
        self.last_result = result
        self.summary.show_result(result)
        self.plots.redraw()
        self.log(f"run ended: best val accuracy {result.best_val_accuracy:.1%}, final "
                 f"{result.final_val_accuracy:.1%}, {result.seconds:.1f}s, frozen weights "
                 f"{'unchanged' if result.frozen_verified else 'CHANGED'}; results in {result.run_dir}")
        self.progress.setFormat(f"Done · {result.epochs_completed} epoch(s) · best val {result.best_val_accuracy:.1%}")

    def _on_errored(self, message: str) -> None:
        self.last_error = message
        self.log(message, "error")
        self.progress.setFormat("Failed")
        self.show_error("Training failed", message)

    def _on_thread_finished(self) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        run.thread.wait()
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self._set_locked(False)
        self.run_finished.emit()

    # ------------------------------------------------------------------ messages and closing

    def log(self, text: str, level: str = "info") -> None:
        self.log_panel.write(text, level)
        if level != "info":
            self.statusBar().showMessage(text.splitlines()[-1] if text else "", 10000)

    def show_error(self, title: str, text: str) -> None:
        """A readable, non-blocking message box (also written to the log)."""
        self.log(f"{title}: {text}", "error")
        if self.error_box is not None:
            self.error_box.close()
        self.error_box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        self.error_box.open()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.is_running():
            answer = QMessageBox.question(
                self, "Training is running", "A run is in progress. Stop it and quit?\n"
                "The model trained so far is kept in the run folder.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.log("stopping the run before quitting")
            self.stop_and_join()
        if not self.maybe_save():
            event.ignore()
            return
        if self._plots is not None:
            self._plots.timer.stop()
        if hasattr(self.data_panel, "shutdown"):
            self.data_panel.shutdown()
        self._save_layout()
        event.accept()

    def _save_layout(self) -> None:
        s = gui_settings.app_settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.sync()

    def _restore_layout(self) -> None:
        s = gui_settings.app_settings()
        geometry, state = s.value("window/geometry"), s.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            QTimer.singleShot(0, lambda: self.restoreState(state))
