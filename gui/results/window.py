"""The run the window shows, and the Results and Runs tabs beside the layer checklist (a mixin of `MainWindow`).

`shown_run` is the run folder the window shows the results of: the last run that finished here, or a past run
opened (Run > Open Run..., Run > Recent Runs, the Runs tab); None until there is one. `show_run` changes it and
says so with the window's `shown_run_changed(Path | None)`; whatever acts on "the run shown" (its results,
trying its model, exporting it) reads `shown_run`. File > Export Model... and the Results tab's Export... open one
export dialog (`gui.export_dialog`) on the run shown; its run folder follows the run shown until the person
chooses another. Opening a past run also shows its curves in the training
plots and its summary card, read from its folder; nothing of the project being edited changes.

The Results tab is made just after the window's first paint (with the plots: at the first run's end it held the
window ~30 ms), the Runs tab when first shown; neither delays the first paint.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from engine.errors import ThawError
from gui.dialogs import choose_folder, open_files
from gui.naming import named

LAYERS, RESULTS, RUNS = range(3)
RECENT_RUNS = 10


def _page() -> QWidget:
    page = QWidget()
    QVBoxLayout(page).setContentsMargins(0, 0, 0, 0)
    return page


class RunResults:
    """For a window with `project`, `runs`, `plots`, `summary`, `run_finished`, `shown_run_changed`, `log`,
    `show_error`, `is_running` and the menus `file_menu` and `run_menu` of `WindowChrome`."""

    def _build_results(self, layers: QWidget, file_menu, run_menu) -> QTabWidget:
        """The centre: the layer checklist (`layers`) and the Results and Runs tabs; their menu items."""
        self.shown_run: Path | None = None
        self._results_view = self._runs_view = None
        self.export_dialog = None
        self._curves_wanted: Path | None = None  # a past run whose curves go into the plots once read
        self.centre_tabs = named(QTabWidget(), "centreTabs", "Layers, results and runs")
        self.centre_tabs.tabBar().setObjectName("centreTabBar")
        self.centre_tabs.tabBar().setAccessibleName("Centre sections")
        self.centre_tabs.addTab(layers, "Layers")
        self._results_page, self._runs_page = _page(), _page()
        self.centre_tabs.addTab(self._results_page, "Results")
        self.centre_tabs.addTab(self._runs_page, "Runs")
        self.centre_tabs.currentChanged.connect(self._tab_shown)
        self.run_finished.connect(self._show_finished_run)
        self.runs.running_changed.connect(lambda running: self.open_run_action.setEnabled(not running))

        self.predict_action = self._action("&Predict...", self.predict_dialog, "predictImages",
                                           tip="Try the shown run's model on images: top-5 and Grad-CAM")
        file_menu.insertAction(file_menu.actions()[file_menu.actions().index(self.save_action) - 1],
                               self.predict_action)
        self.open_run_action = self._action("Open R&un...", self.open_run_dialog, "openRun",
                                            tip="Show a past run's results and curves, read-only")
        self.evaluate_action = self._action("Evaluate on Another Folder...", self.evaluate_dialog,
                                            "evaluateOtherFolder",
                                            tip="Evaluate the shown run's model on a labelled folder of images")
        run_menu.addSeparator()
        run_menu.addAction(self.open_run_action)
        self.recent_runs_menu = self._menu(run_menu, "Recent R&uns", "recentRunsMenu")
        self.recent_runs_menu.aboutToShow.connect(self._refresh_recent_runs)
        run_menu.addAction(self.evaluate_action)
        self.export_action = self._action("&Export Model...", self.export_model_dialog, "exportModel",
                                          tip="Export a run's model (ONNX, .pt2, safetensors), verified against PyTorch")
        file_menu.insertAction(self.quit_action, self.export_action)
        file_menu.insertSeparator(self.quit_action)
        self._shown_state()
        return self.centre_tabs

    # ------------------------------------------------------------------ the tabs, made on first use

    @property
    def results_view(self):
        if self._results_view is None:
            from gui.results.view import ResultsView

            self._results_view = view = ResultsView()
            view.error.connect(self.show_error)
            view.loaded.connect(self._shown_loaded)
            view.open_run_requested.connect(self.open_run_dialog)
            view.evaluate_button.clicked.connect(self.evaluate_dialog)
            view.try_button.clicked.connect(self.predict_dialog)
            view.export_button.clicked.connect(self.export_model_dialog)
            self._results_page.layout().addWidget(view)
        return self._results_view

    @property
    def runs_view(self):
        if self._runs_view is None:
            from gui.results.runs_view import RunsView

            self._runs_view = view = RunsView()
            view.open_requested.connect(self.open_run)
            self._runs_page.layout().addWidget(view)
            view.set_folder(self.project.resolve(self.project.train.out_dir))
        return self._runs_view

    def _tab_shown(self, index: int) -> None:
        if index == RESULTS:
            self.results_view  # noqa: B018 (made on first use)
        elif index == RUNS:
            self.runs_view.set_folder(self.project.resolve(self.project.train.out_dir))

    # ------------------------------------------------------------------ the run shown

    def show_run(self, folder: str | Path, curves: bool = True) -> bool:
        """Show the run in `folder` in the Results tab (and, with `curves`, its curves and summary in place of
        the plots'); False, with a message, when it is not a run folder."""
        from engine.runs import catalog

        folder = Path(folder).expanduser().absolute()
        try:
            catalog.read_run(folder)
        except ThawError as exc:
            self.show_error("Cannot open the run", str(exc))
            return False
        self._curves_wanted = folder if curves else None
        if folder != self.shown_run:
            self.shown_run = folder
            self.shown_run_changed.emit(folder)
        self.results_view.show_run(folder)
        self.centre_tabs.setCurrentIndex(RESULTS)
        self._shown_state()
        return True

    def _shown_loaded(self, shown) -> None:
        """The Results view has read the run: a past run's curves and summary replace the plots' own."""
        if self._curves_wanted is None or shown.record.folder != self._curves_wanted or self.is_running():
            return
        self._curves_wanted = None
        self.plots.show_run(shown.epochs, shown.record.steps_per_epoch)
        ended = shown.record.fit_ended()
        if ended is not None:
            self.summary.show_result(ended)
        else:
            self.summary.hide()
        self.log(f"showing the run in {shown.record.folder} ({shown.record.status}), read-only")

    def _show_finished_run(self) -> None:
        """A run ended here after at least one epoch: show its results (its curves are on the plots already)."""
        result = self.last_result
        if result is not None and result.epochs_completed and (Path(result.run_dir) / "model.safetensors").is_file():
            self.show_run(result.run_dir, curves=False)
        if self._runs_view is not None:
            self._runs_view.refresh()

    def _shown_state(self) -> None:
        has_run = self.shown_run is not None
        for action in (self.predict_action, self.evaluate_action):
            action.setEnabled(has_run)
            action.setToolTip(action.statusTip() if has_run else "Show a run first: train one, or Run > Open Run...")

    # ------------------------------------------------------------------ the menus

    def open_run_dialog(self) -> None:
        folder = choose_folder(self, "Open the run folder", self.project.resolve(self.project.train.out_dir))
        if folder:
            self.open_run(folder)

    def open_run(self, folder: str | Path) -> bool:
        """Show a past run (refused while a run trains: the plots are its)."""
        if self.is_running():
            self.show_error("Cannot open a run", "A run is in progress; its curves are on the plots. Open the past "
                            "run once it has ended.")
            return False
        return self.show_run(folder, curves=True)

    def _refresh_recent_runs(self) -> None:
        from engine.runs import catalog

        self.recent_runs_menu.clear()
        found = catalog.project_runs(self.project)[:RECENT_RUNS]
        for i, record in enumerate(found):
            action: QAction = self.recent_runs_menu.addAction(f"{record.name} ({record.status})")
            action.setObjectName(f"recentRun{i}")
            action.triggered.connect(lambda _=False, f=record.folder: self.open_run(f))
            action.setEnabled(not self.is_running())
        if not found:
            self.recent_runs_menu.addAction("No runs in this project's output folder yet").setEnabled(False)

    def predict_dialog(self) -> None:
        from engine.data import IMAGE_EXTENSIONS

        if self.shown_run is None:
            self.show_error("Cannot predict", "Show a run first: train one, or Run > Open Run...")
            return
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_EXTENSIONS))
        paths = open_files(self, "Predict images", None, f"Images ({patterns});;All files (*)")
        if paths:
            self.centre_tabs.setCurrentIndex(RESULTS)
            self.results_view.try_images(paths)

    def evaluate_dialog(self) -> None:
        if self.shown_run is None:
            self.show_error("Cannot evaluate", "Show a run first: train one, or Run > Open Run...")
            return
        folder = choose_folder(self, "Evaluate on the labelled images in", None)
        if folder:
            self.centre_tabs.setCurrentIndex(RESULTS)
            if not self.results_view.evaluate(folder):
                self.show_error("Cannot evaluate", "An evaluation is running already; wait for it or cancel it.")

    def export_model_dialog(self) -> None:
        """File > Export Model... (and Export... in the Results tab): the export dialog, on the run shown (any run
        folder can be chosen in it), made on first use and kept, so an export goes on while it is hidden."""
        if self.export_dialog is None:
            from gui.export_dialog import ExportDialog

            self.export_dialog = ExportDialog(self.shown_run or "", self)
            self.shown_run_changed.connect(self.export_dialog.follow_run)
        self.export_dialog.show()
        self.export_dialog.raise_()
        self.export_dialog.activateWindow()

    def _results_shutdown(self) -> None:
        """Join every task of the two tabs and an export (the window is closing)."""
        for view in (self._results_view, self._runs_view):
            if view is not None:
                view.shutdown()
        if self.export_dialog is not None and self.export_dialog.is_running():
            self.export_dialog.reject()  # stop: nothing is written
            self.export_dialog.join()
