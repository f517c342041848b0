"""The main window: assembles the set-up panels, the layer checklist, the plots and the log.

It edits one `Project` and shows what the engine says about it: after every edit and every scan of the data it
asks `engine.preflight` and hands each panel the problems whose keys it owns; Start is enabled when nothing
blocks a run. The run itself is the `RunController`'s, started and stopped through `Running`; files are
`ProjectFiles`' (File and Demo menus).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.errors import ProjectError, ThawError
from engine.model.assemble import skeleton
from engine.model.checklist import Checklist
from engine.model.heads import head_in_features
from engine.preflight import blocking, preflight
from engine.project import Project
from engine.sources import Sources
from gui.advisor import Advisor
from gui.chrome import WindowChrome
from gui.dialogs import dropped_choice
from gui.freeze.panel import FreezePanel
from gui.log_panel import LogPanel
from gui.lr_finder import LrFinding
from gui.naming import named
from gui.panels.data_panel import DataPanel
from gui.panels.head_panel import HeadPanel
from gui.panels.model_panel import ModelPanel
from gui.panels.training_panel import TrainingPanel
from gui.project_files import ProjectFiles
from gui.reason_bar import ReasonBar
from gui.results.window import RunResults
from gui.run.controller import RunController, ask_to_stop
from gui.run.running import Running
from gui.tasks import freeze_once
from gui.undo import ProjectHistory, Snapshot, put_back

if TYPE_CHECKING:
    from gui.plots.training import TrainingPlots
    from gui.study.dialog import StudyDialog

SCANNING = "the training images are being scanned"
NOT_SCANNED = "the data has not been scanned since its path changed: press Return in its field"


class MainWindow(Running, ProjectFiles, RunResults, LrFinding, WindowChrome, QMainWindow):
    run_finished = Signal()  # the run's thread has ended (after it returned or failed)
    start_page_requested = Signal()  # File > Start Page (gui.app shows it)
    shown_run_changed = Signal(object)  # `shown_run`, the run folder whose results the window shows (gui.results.window)

    def __init__(self, project: Project | None = None, path: str | Path | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setAcceptDrops(True)  # a folder of images, a CSV list or a project file
        room = self.screen().availableGeometry().size()  # first use: no larger than the screen
        self.resize(min(1400, room.width()), min(900, room.height()))
        self._share_on_show = False
        self.project = Project()
        self.path: Path | None = None
        self.dirty = False
        self.error_box: QMessageBox | None = None
        self.found: list[ProjectError] = []  # what the engine says about the project now
        self._tree_key: tuple | None = None
        self._plots: TrainingPlots | None = None
        self.runs = RunController(lambda: self.plots, self.log, self.show_error, self)
        self.runs.running_changed.connect(self._set_locked)
        # The run's results are shown a turn of the event loop after the set-up is checked again: two steps of
        # ~40 ms each rather than one of ~100 (bench/gui_responsiveness.py).
        self.runs.running_changed.connect(
            lambda running: running or QTimer.singleShot(0, self, self.run_finished.emit))
        self.runs.paused_changed.connect(lambda _paused: self.update_start_state())
        self.history = ProjectHistory(lambda: self.project, self._put_back, self._typed_in, self)
        self.history.changed.connect(self._history_moved)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_panels()
        self._build_status_bar()
        self.advisor = Advisor(self)  # the Suggest button beside the checklist
        self.study: StudyDialog | None = None  # the transfer study, made on first use
        self._restore_layout()
        self.set_project(project if project is not None else Project(), path)

    # ------------------------------------------------------------------ building the window

    def _build_panels(self) -> None:
        self.model_panel, self.data_panel = ModelPanel(), DataPanel()
        self.head_panel, self.training_panel = HeadPanel(), TrainingPanel()
        self.setup_panels = {"Model": self.model_panel, "Data": self.data_panel, "Head": self.head_panel,
                             "Training": self.training_panel}
        for panel in self.setup_panels.values():
            panel.changed.connect(self._project_edited)
            panel.problems_changed.connect(self.update_start_state)
        self.data_panel.scanned.connect(self._scanned)
        self.model_panel.weights_arrived.connect(lambda _arch: self.recheck())
        self.setup_tabs = named(QTabWidget(), "setupTabs", "Set-up")
        self.setup_tabs.tabBar().setObjectName("setupTabBar")
        self.setup_tabs.tabBar().setAccessibleName("Set-up sections")
        self._pages: dict[QWidget, QScrollArea] = {}
        for title, panel in self.setup_panels.items():
            page = QScrollArea()  # a panel taller than the screen scrolls instead of raising the window's height
            page.setObjectName(f"{title.lower()}Page")
            page.setWidgetResizable(True)
            page.setFrameShape(QFrame.Shape.NoFrame)
            page.setWidget(panel)
            self._pages[panel] = page
            self.setup_tabs.addTab(page, title)
        self.setup_banner = self.runs.banner  # says the run is going, or paused, while it is
        setup = QWidget()
        lay = QVBoxLayout(setup)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.setup_banner)
        lay.addWidget(self.setup_tabs)
        self.setup_dock = self._dock("Set-up", "setupDock", setup, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.freeze_panel = FreezePanel()  # the centre; it marks itself read-only during a run
        self.freeze_panel.changed.connect(self._project_edited)
        self.runs.now.connect(self.freeze_panel.show_now)
        self.runs.activity.connect(self.freeze_panel.show_activity)
        self.training_panel.find_lr_requested.connect(self.find_lr)
        self.start_reason = ReasonBar()  # why Start is disabled, in full, above the checklist
        self.start_reason.go_to.connect(self.go_to_field)
        centre = QWidget()
        lay = QVBoxLayout(centre)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addWidget(self.start_reason)
        lay.addWidget(self._build_results(self.freeze_panel, self.findChild(QMenu, "fileMenu"),
                                          self.findChild(QMenu, "runMenu")), 1)  # Layers, Results, Runs
        self.setCentralWidget(centre)

        # Right: summary of the last run above the live plots (made after the first paint, see `plots`).
        self._plots_placeholder = QLabel("Loading plots...")
        self._plots_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        right = QWidget()
        self._plots_layout = lay = QVBoxLayout(right)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(self._plots_placeholder, 1)
        self.plots_dock = self._dock("Training", "plotsDock", right, Qt.DockWidgetArea.RightDockWidgetArea)

        self.log_panel = named(LogPanel(), "log", "Log")
        self.log_dock = self._dock("Log", "logDock", self.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea)

    @property
    def plots(self) -> TrainingPlots:
        """The live plots, made on first use or just after the window's first paint: importing pyqtgraph is
        ~0.8 s that the first paint need not wait for (bench/startup.py)."""
        if self._plots is None:
            from gui.plots.training import TrainingPlots

            self._plots = named(TrainingPlots(), "plots", "Training plots")
            self._plots_layout.replaceWidget(self._plots_placeholder, self._plots)
            self._plots_placeholder.deleteLater()
            self._plots.show()  # a widget added to a shown window stays hidden until told
            freeze_once()  # the window and its imports are all here now
        return self._plots

    def event(self, event: QEvent) -> bool:
        """After the window's first paint, make the plots (see `plots`) and the Results tab (made at the first
        run's end, it held the window ~30 ms then)."""
        handled = super().event(event)
        if event.type() == QEvent.Type.UpdateRequest and self._plots is None:
            QTimer.singleShot(0, self, lambda: self.plots)
            QTimer.singleShot(0, self, lambda: self.results_view)
        return handled

    # ------------------------------------------------------------------ the project and what the engine says

    def set_project(self, project: Project, path: str | Path | None = None) -> None:
        """Show `project` in every panel; `path` is its file (None for a new, unsaved one)."""
        self.project = project
        self.path = Path(path) if path else None
        self._tree_key = None
        self.freeze_panel.set_checklist(None)  # the old model's; the new one's comes with `_rebuild_tree`
        self.freeze_panel.set_freeze_settings(project.freeze, project.train)
        for panel in self.setup_panels.values():
            panel.set_project(project)  # the data panel starts a scan: `_scanned` follows
        self._rebuild_tree(reset_misfit=False)
        self.history.reset()
        self.dirty = False
        self._update_title()
        self.recheck()
        self.runs.device_label.setText(f"device: {project.train.device}")
        self._tab_shown(self.centre_tabs.currentIndex())  # the Runs tab, when shown, lists this project's runs

    def _project_edited(self) -> None:
        self.dirty = True
        self._update_title()
        self._rebuild_tree(reset_misfit=True)
        self.history.record()  # after the rebuild: a plan reset with the architecture is the same step
        self.recheck()

    def _put_back(self, snapshot: Snapshot) -> None:
        """Undo or redo: the project takes the step's values, and every panel shows them."""
        put_back(self.project, snapshot)
        for panel in self.setup_panels.values():
            panel.show_values()
        self.freeze_panel.set_freeze_settings(self.project.freeze, self.project.train)
        self._rebuild_tree(reset_misfit=False)
        self.recheck()

    def apply_settings(self, changes: dict[str, object]) -> None:
        """Set several keys as one edit (one Undo step), shown in every panel: the advisor's suggestion."""
        for key, value in changes.items():
            self.project.set(key, value)
        for panel in self.setup_panels.values():
            panel.show_values()
        self.freeze_panel.set_freeze_settings(self.project.freeze)
        self._project_edited()

    def open_study(self) -> None:
        """The transfer study of this project (Run > Transfer Study); its plots import pyqtgraph, so on first use."""
        from gui.study.dialog import StudyDialog

        if self.study is None:
            self.study = StudyDialog(self)
        self.study.prepare(self.project)
        self.study.show()
        self.study.raise_()

    def _history_moved(self) -> None:
        self.dirty = not self.history.is_clean()
        self._update_title()
        self.update_start_state()

    def _typed_in(self, key: str) -> bool:
        return any(panel.fields.is_typed_in(key) for panel in self.setup_panels.values())

    def _scanned(self, _sources: Sources | None) -> None:
        self._rebuild_tree(reset_misfit=False)
        self.recheck()

    def _classes(self) -> list[str]:
        sources = self.data_panel.sources
        return sources.classes if sources is not None else []

    def _rebuild_tree(self, reset_misfit: bool) -> None:
        """Show the model's checklist again when the architecture, the head or the data's classes change; the
        head panel gets its sizes from the same skeleton and classes."""
        head, classes = self.project.head, self._classes()
        kept, mlp = head.kind == "keep", head.kind == "mlp"  # hidden sizes and dropout shape only an MLP head
        key = (self.project.model.arch, head.kind, tuple(head.hidden) if mlp else (), mlp and head.dropout > 0,
               tuple(classes))
        if key == self._tree_key:
            return
        arch_changed = self._tree_key is not None and self._tree_key[0] != key[0]
        self._tree_key = key
        self.head_panel.set_num_classes(len(classes) or None)
        try:  # until the scan finds the classes the head has one output, and its counts show as unknown
            built = skeleton(self.project, len(classes) or 1, classes if kept and classes else None, freeze=False)
        except ThawError as exc:
            self.freeze_panel.set_checklist(None)
            self.head_panel.set_in_features(None)
            self.head_panel.set_head_params(None)
            self.log(f"cannot show the layers: {exc}", "warning")
            return
        checklist = Checklist(built.model, built.head_paths, classes_known=bool(classes))
        self.head_panel.set_in_features(head_in_features(built.model, built.head_paths))
        self.head_panel.set_head_params(checklist.head_params())
        note = self.freeze_panel.set_checklist(checklist, head_kept=kept, reset_misfit=reset_misfit and arch_changed)
        if note:
            self.log(note, "warning")
            self.dirty = True
            self._update_title()

    def recheck(self) -> None:
        """Ask the engine what is wrong with the project now and show it beside each field."""
        self.found = preflight(self.project, self.data_panel.sources)
        for panel in self.setup_panels.values():
            panel.show_problems(self.found)
        self.freeze_panel.show_problems(self.found)
        self.update_start_state()

    def typed_problems(self) -> list[str]:
        """Fields whose text the project could not take (it holds the previous value)."""
        return [str(e) for e in self._typed()]

    def _typed(self) -> list[ProjectError]:
        return [e for panel in self.setup_panels.values() for e in panel.typed()]

    def reasons(self, wait_for_scan: bool = True) -> list[ProjectError]:
        """Why the project cannot run now, each with its key (empty when it can)."""
        found = self._typed() + blocking(self.found)
        if wait_for_scan and self.project.data.train.strip() and self.data_panel.sources is None:
            found.append(ProjectError("data.train", SCANNING if self.data_panel.is_scanning() else NOT_SCANNED))
        unique: dict[str, ProjectError] = {}
        for e in found:
            unique.setdefault(str(e), e)
        return list(unique.values())

    def problems(self, wait_for_scan: bool = True) -> list[str]:
        """Why the project cannot run now, as readable lines (empty when it can)."""
        return [str(e) for e in self.reasons(wait_for_scan)]

    def go_to_field(self, key: str) -> None:
        """Show the field a problem's key belongs to, with the keyboard focus on it."""
        if key.startswith("freeze."):
            self.freeze_panel.tree.setFocus()
            return
        for panel in self.setup_panels.values():
            if panel.fields.widget_for(key) is not None:
                self.setup_dock.show()
                self.setup_dock.raise_()
                self.setup_tabs.setCurrentWidget(self._pages[panel])
                panel.focus_field(key)
                return

    def update_start_state(self) -> None:
        running = self.is_running()
        found = [] if running else self.reasons()
        self.start_action.setEnabled(not running and not found)
        self.processes_action.setEnabled(not running and not found)
        self.start_reason.show_reasons(found)
        self.start_action.setToolTip("Can't start:\n" + "\n".join(map(str, found)) if found else "Train the project")
        paused = self.runs.is_paused()
        self.pause_action.setEnabled(running and not paused and self.runs.can_pause())
        self.resume_action.setEnabled(running and paused)
        self.stop_action.setEnabled(running)
        self.show_undo_state(running)
        for action in (self.new_action, self.open_action, self.recent_menu.menuAction(), self.continue_action,
                       *self.demo_actions.values()):
            action.setEnabled(not running)

    def _update_title(self) -> None:
        name = self.path.name if self.path else (self.project.name or "untitled")
        self.setWindowTitle(f"{name}{'*' if self.dirty else ''} — Thaw")

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
        self.error_box.setObjectName("errorBox")
        self.error_box.open()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt's names)
        if not self.is_running() and any(dropped_choice(u.toLocalFile()) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if self.take_dropped(url.toLocalFile()):
                event.acceptProposedAction()
                return

    def closeEvent(self, event: QCloseEvent) -> None:
        """Both questions first (a run going, unsaved changes), then the run is stopped, within seconds."""
        if (self.is_running() and not ask_to_stop(self)) or not self.maybe_save():
            event.ignore()
            return
        self.runs.stop_to_quit()
        self.advisor.stop_and_join()
        if self.study is not None:
            self.study.stop_and_join()
        self.close_lr_finder()
        if self._plots is not None:
            self._plots.timer.stop()
        self.data_panel.shutdown()
        self._results_shutdown()
        self.model_panel.shutdown()
        self._save_layout()
        event.accept()
