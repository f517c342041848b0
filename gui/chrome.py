"""The window's menus, toolbar, docks and status bar (a mixin of `MainWindow`): actions named and with their
shortcuts listed in the menus; what they do is the window's. The window's size and its docks' places are kept
in the settings; on first use the docks share the window once it is shown at its size."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShowEvent
from PySide6.QtWidgets import QDockWidget, QWidget

from gui import settings as gui_settings
from gui.naming import named

DEMOS = (("inductive", "Inductive demo: digits 5-9 (same domain, new task)"),
         ("transductive", "Transductive demo: poorly scanned digits 0-4 (new domain, same task)"))


class WindowChrome:
    """Builds the window's actions, menus, toolbar, docks and status bar."""

    def _action(self, text: str, slot, name: str, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        return action

    def _build_actions(self) -> None:
        S = QKeySequence.StandardKey
        self.new_action = self._action("&New", self.new_project, "newProject", S.New, "Start a new, empty project")
        self.open_action = self._action("&Open...", self.open_dialog, "openProject", S.Open, "Open a *.thaw.toml project")
        self.save_action = self._action("&Save", self.save, "saveProject", S.Save, "Save the project")
        self.save_as_action = self._action("Save &As...", self.save_as_dialog, "saveProjectAs", S.SaveAs,
                                           "Save under a new name")
        self.start_page_action = self._action("Start &Page...", self.start_page_requested.emit, "startPage",
                                              tip="Open a demo, a folder of images or a project, or a recent one")
        self.quit_action = self._action("&Quit", self.close, "quit", S.Quit)
        self.start_action = self._action("Start", self.start, "startRun", "Ctrl+R", "Train the project")
        self.pause_action = self._action("Pause", self.pause, "pauseRun", "Ctrl+Shift+P",
                                         "Pause after the current batch (Resume goes on from there)")
        self.resume_action = self._action("Resume", self.resume, "resumeRun", "Ctrl+Shift+R", "Continue the paused run")
        self.stop_action = self._action("Stop", self.stop, "stopRun", "Ctrl+.",
                                        "Stop now (before the next layer); the best model so far is kept")
        self.processes_action = self._action(self.processes_action_text(), self.run_in_processes, "runInProcesses",
                                             tip="Train the project in several processes under torchrun (one per "
                                                 "GPU, or on several machines); the window follows the run")
        self.continue_action = self._action("Continue a Stopped Run...", self.continue_dialog, "continueRun",
                                            tip="Resume a stopped or crashed run from its folder's last checkpoint")
        self.study_action = self._action("Transfer Study...", self.open_study, "transferStudy",
                                         tip="Train the project several ways (from scratch, feature extraction, last "
                                             "blocks, full) on the same images and seeds, and compare")
        self.undo_action = self._action("&Undo", self.undo, "undo", S.Undo, "Undo the last edit")
        self.redo_action = self._action("&Redo", self.redo, "redo", tip="Redo the edit undone")
        redo = QKeySequence("Ctrl+Shift+Z")  # everywhere, beside the platform's own (Ctrl+Y on Windows)
        self.redo_action.setShortcuts([redo, *(k for k in QKeySequence.keyBindings(S.Redo) if k != redo)])
        self.demo_actions = {name: self._action(label, lambda _=False, n=name: self.open_demo(n), f"demo_{name}")
                             for name, label in DEMOS}

    def _build_menus(self) -> None:
        bar = named(self.menuBar(), "menuBar", "Menu bar")
        file_menu = self._menu(bar, "&File", "fileMenu")
        file_menu.addActions([self.start_page_action, self.new_action, self.open_action])
        self.recent_menu = self._menu(file_menu, "Open &Recent", "recentMenu")
        file_menu.addSeparator()
        file_menu.addActions([self.save_action, self.save_as_action])
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = self._menu(bar, "&Edit", "editMenu")
        edit_menu.addActions([self.undo_action, self.redo_action])
        run_menu = self._menu(bar, "&Run", "runMenu")
        run_menu.addActions([self.start_action, self.pause_action, self.resume_action, self.stop_action])
        run_menu.addSeparator()
        run_menu.addActions([self.processes_action, self.continue_action, self.study_action])
        demo_menu = self._menu(bar, "&Demo", "demoMenu")
        demo_menu.addActions(list(self.demo_actions.values()))
        self.view_menu = self._menu(bar, "&View", "viewMenu")
        self._refresh_recent_menu()

    def undo(self) -> None:
        if not self.is_running():  # a run holds the project
            self.history.undo()

    def redo(self) -> None:
        if not self.is_running():
            self.history.redo()

    def show_undo_state(self, running: bool) -> None:
        """Undo and Redo name the step they would take; neither while a run holds the project."""
        stack = self.history.stack
        for action, word, can, what in ((self.undo_action, "&Undo", stack.canUndo(), stack.undoText()),
                                        (self.redo_action, "&Redo", stack.canRedo(), stack.redoText())):
            action.setEnabled(can and not running)
            action.setText(f"{word} {what}" if can else word)

    def _menu(self, parent, title: str, name: str):
        return named(parent.addMenu(title), name, title.replace("&", ""))

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Training")
        tb.setObjectName("trainingToolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addActions([self.start_action, self.pause_action, self.resume_action, self.stop_action])
        for action in (self.start_action, self.pause_action, self.resume_action, self.stop_action):
            button = tb.widgetForAction(action)
            named(button, f"{action.objectName()}Button", action.text())
        tb.addSeparator()
        tb.addAction(self.study_action)
        named(tb.widgetForAction(self.study_action), "transferStudyButton", "Transfer study")
        tb.addSeparator()
        tb.addWidget(self.runs.progress)

    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        dock.toggleViewAction().setObjectName(f"{name}Toggle")
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.addPermanentWidget(self.runs.speed_label)
        bar.addPermanentWidget(self.runs.device_label)

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
        else:  # first use: the docks share the window, once it is shown at the size it will have
            self._share_on_show = True

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if self._share_on_show:
            self._share_on_show = False
            QTimer.singleShot(0, self._share_screen)

    def _share_screen(self) -> None:
        w, h = self.width(), self.height()
        self.resizeDocks([self.setup_dock, self.plots_dock], [round(w * 0.26), round(w * 0.31)],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [max(70, round(h * 0.13))], Qt.Orientation.Vertical)
