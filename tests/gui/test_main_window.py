"""The main window: projects open/save, the title's asterisk, Start's state, and training runs in a QThread."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from engine import project as projects
from engine.project import Project
from gui import settings as gui_settings
from gui import tasks
from gui.main_window import MainWindow


def test_window_opens_with_title(window, qtbot):
    window.show()
    qtbot.waitExposed(window)
    assert window.windowTitle() == "untitled — Thaw"


def test_save_open_and_unsaved_asterisk(window, tmp_path, answer):
    window.project.name = "pets"
    window.project.set("train.epochs", 3)
    path = tmp_path / "pets.thaw.toml"
    assert window.save_to(path)
    assert window.windowTitle() == "pets.thaw.toml — Thaw"
    assert projects.load(path).train.epochs == 3
    assert gui_settings.recent_projects()[0] == str(path.resolve())

    window.training_panel.epochs.setText("7")
    window.training_panel.epochs.textEdited.emit("7")
    assert window.project.train.epochs == 7
    assert window.dirty and window.windowTitle() == "pets.thaw.toml* — Thaw"

    # opening another project asks about the unsaved change; "Discard" drops it
    assert window.open_path(path)
    assert answer["asked"] == ["Unsaved changes"]
    assert window.project.train.epochs == 3 and not window.dirty


def test_bad_project_file_is_a_message_not_a_crash(window, tmp_path):
    bad = tmp_path / "bad.thaw.toml"
    bad.write_text("[train]\nepochs = 'many'\n")
    before = window.project
    assert not window.open_path(bad)
    assert window.project is before
    assert window.error_box is not None and "train.epochs" in window.error_box.text()
    assert "train.epochs" in window.log_panel.lines[-1]


def test_invalid_field_disables_start_with_the_reason(window, qtbot, project_factory):
    window.set_project(project_factory())
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)

    window.training_panel.lr.setText("fast")
    window.training_panel.lr.textEdited.emit("fast")
    assert not window.start_action.isEnabled()
    assert "train.lr" in window.start_reason.text()
    assert "train.lr" in window.start_action.toolTip()

    window.training_panel.lr.setText("0.01")
    window.training_panel.lr.textEdited.emit("0.01")
    assert window.start_action.isEnabled() and window.start_reason.text() == ""


def test_missing_data_folder_disables_start(window, tmp_path):
    project = Project(base_dir=tmp_path)
    project.set("data.train", "nowhere")
    window.set_project(project)
    assert not window.start_action.isEnabled()
    assert "data.train" in window.start_reason.text()
    assert not window.start()
    assert not tasks.running()


def tiny_project(project_factory, epochs: int = 2):
    """2 classes x 8 images, 3 steps of 4 per epoch."""
    return project_factory(classes=("circle", "square"), train__epochs=epochs, train__batch_size=4,
                           train__device="cpu", train__amp=False)


def test_demo_opens_with_its_layer_tree(window, qtbot):
    assert window.open_demo("inductive")
    assert window.path is not None and window.path.name.endswith(".thaw.toml")
    assert window.project.model.arch == "thaw_digits_cnn"
    plan = window.freeze_panel.current_plan()
    assert plan is not None and plan.frozen  # the demo starts as feature extraction: the backbone is frozen
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    assert window.windowTitle().endswith(" — Thaw") and not window.dirty


def test_changing_the_architecture_rebuilds_the_tree(window, project_factory):
    window.set_project(tiny_project(project_factory))
    assert "block3" in window.freeze_panel.checklist.blocks
    window.project.set("model.arch", "resnet18")
    window._project_edited()
    assert "block3" not in window.freeze_panel.checklist.blocks
    assert any(path.startswith("layer4") for path in window.freeze_panel.checklist.blocks)


def test_a_short_run_fills_the_plots_and_shows_the_summary(window, qtbot, tmp_path, project_factory):
    window.set_project(tiny_project(project_factory))
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    with qtbot.waitSignal(window.run_finished, timeout=120_000):
        assert window.start()
        assert not window.start_action.isEnabled() and window.stop_action.isEnabled()
        assert window.setup_banner.isVisibleTo(window) and window.freeze_panel.is_read_only()
    result = window.last_result
    assert result is not None and result.epochs_completed == 2, window.last_error
    steps = 2 * 3  # 12 training images in batches of 4, 2 epochs
    assert window.plots.train_loss.n == steps and window.plots.lr_series.n == steps
    assert window.plots.val_acc.n == 2 and window.plots.val_loss.n == 2
    assert window.summary.isVisibleTo(window) and "best val accuracy" in window.summary.label.text()
    assert window.summary.open_button.isEnabled()
    assert window.summary.run_folder_url().toLocalFile() == str(tmp_path.joinpath("runs").resolve().joinpath(
        window.summary.run_folder_url().toLocalFile().rpartition("/")[2]))
    assert "Done" in window.progress.format()
    assert window.start_action.isEnabled() and not window.freeze_panel.is_read_only()
    qtbot.waitUntil(lambda: not tasks.running(), timeout=30_000)  # the Results tab reads the run in a task


def start_long_run(window, qtbot, project_factory):
    """Start a 500-epoch run on a tiny folder and wait until its first batch has arrived."""
    project = tiny_project(project_factory)
    project.set("train.epochs", 500)
    window.set_project(project)
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    window.start()
    qtbot.waitUntil(lambda: window.plots.train_loss.n > 0, timeout=120_000)


def test_stop_during_a_run_returns_quickly_and_joins_the_thread(window, qtbot, project_factory):
    start_long_run(window, qtbot, project_factory)
    with qtbot.waitSignal(window.run_finished, timeout=5000):
        window.stop()
    assert window.last_result.stopped_by_user
    assert "stopped by you" in window.summary.label.text()
    assert window.run is None
    # a run stopped after its first epoch is shown in Results, whose reading task ends on its own
    qtbot.waitUntil(lambda: not tasks.running(), timeout=30_000)


def test_closing_mid_run_stops_and_joins(qtbot, project_factory, answer):
    window = MainWindow()
    start_long_run(window, qtbot, project_factory)
    answer["button"] = QMessageBox.StandardButton.Yes
    assert window.close()
    assert answer["asked"] == ["Training is running"]
    assert not tasks.running()
    window.deleteLater()


def test_closing_mid_run_can_be_cancelled(window, qtbot, project_factory, answer):
    project = tiny_project(project_factory)
    project.set("train.epochs", 500)
    window.set_project(project)
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    window.start()
    answer["button"] = QMessageBox.StandardButton.No
    assert not window.close()
    assert window.is_running()


def test_app_shows_a_bad_project_path_as_a_message(qtbot, tmp_path):
    from gui.app import create_window

    window = create_window(str(tmp_path / "missing.thaw.toml"))
    try:
        assert window.error_box is not None and "does not exist" in window.error_box.text()
        assert window.path is None
    finally:
        window.close()
        window.deleteLater()


def test_app_opens_a_demo_when_asked(qtbot):
    from gui.app import create_window

    window = create_window(demo="inductive")
    try:
        assert window.path is not None and window.project.model.arch == "thaw_digits_cnn"
        assert str(window.path.resolve()) in gui_settings.recent_projects()
    finally:
        window.close()
        window.deleteLater()


def test_app_sets_the_window_up_once_on_the_demo(qtbot, monkeypatch):
    """No default project (a resnet18 skeleton) is set up first only to be replaced: start-up pays it once."""
    from gui.app import create_window

    seen = []
    real = MainWindow.set_project
    monkeypatch.setattr(MainWindow, "set_project", lambda self, p, path=None: (seen.append(p.model.arch),
                                                                                real(self, p, path))[1])
    window = create_window(demo="inductive")
    try:
        assert seen == ["thaw_digits_cnn"]
    finally:
        window.close()
        window.deleteLater()


def test_the_plots_are_made_after_the_first_paint(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    assert window._plots is None  # nothing waits for pyqtgraph before the window shows
    window.show()
    qtbot.waitUntil(lambda: window._plots is not None, timeout=10_000)
    assert window.plots.isVisibleTo(window)


def test_save_as_in_another_folder_keeps_the_data_and_shows_the_rebased_paths(window, qtbot, tmp_path):
    assert window.open_demo("inductive")
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    images = window.project.resolve(window.project.data.train).resolve()
    elsewhere = tmp_path / "elsewhere" / "copy.thaw.toml"
    elsewhere.parent.mkdir()
    assert window.save_to(elsewhere)
    assert window.data_panel.train.text() == window.project.data.train != "images/train"  # rebased, and shown
    assert window.project.resolve(window.data_panel.train.text()).resolve() == images
    assert window.data_panel.sources is not None and window.start_action.isEnabled()  # the same images
    assert window.head_panel.description.text().endswith("-> 5")
