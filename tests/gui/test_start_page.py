"""The first screen and the ways in: the start page's choices (also before the engine has loaded), a new
project that can run here, files dropped on the window, where dialogs open."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from engine import project as projects
from engine.io.locations import data_dir
from engine.model.zoo import DEMO_ARCH
from engine.preflight import preflight
from gui import settings as gui_settings
from gui.app import Launcher
from gui.dialogs import PROJECT_SUFFIX, dropped_choice
from gui.start_page import StartPage
from tests.imagesets import make_image_folder


def test_the_start_page_offers_the_demos_a_folder_a_project_and_the_recent_ones(qtbot, tmp_path):
    recent = tmp_path / "pets.thaw.toml"
    recent.write_text("")
    gui_settings.add_recent_project(recent)
    page = StartPage()
    qtbot.addWidget(page)
    assert set(page.buttons) == {("demo", "inductive"), ("demo", "transductive"), ("folder", ""), ("open", "")}
    assert page.recent.item(0).text() == "pets" and page.recent.item(0).toolTip() == str(recent.resolve())
    with qtbot.waitSignal(page.chosen) as chosen:
        page.buttons[("demo", "transductive")].click()
    assert chosen.args == ["demo", "transductive"]
    with qtbot.waitSignal(page.chosen) as chosen:
        page.recent.itemActivated.emit(page.recent.item(0))
    assert chosen.args == ["open", str(recent.resolve())]


def test_a_choice_made_while_the_engine_loads_waits_for_it(qtbot, answer):
    launcher = Launcher(None, None, None)
    qtbot.addWidget(launcher.start)
    launcher.choose("demo", "inductive")  # before the engine has loaded
    assert launcher.window is None and "as soon as it is ready" in launcher.start.status.text()
    launcher._loaded(None)
    window = launcher.window
    try:
        assert window.project.model.arch == DEMO_ARCH and window.path.name == "digits-5to9.thaw.toml"
        assert window.isVisible() and not launcher.start.isVisible()
        window.start_page_action.trigger()  # File > Start Page brings it back, on top of the window
        assert launcher.start.isVisible()
    finally:
        window.dirty = False
        window.close()
        window.deleteLater()


def test_a_new_project_can_run_here_and_keeps_its_runs_out_of_the_start_folder(window, qtbot, tmp_path):
    window.new_project()
    p = window.project
    assert (p.model.arch, p.model.weights) == (DEMO_ARCH, "pretrained")  # the only weights on this machine
    assert p.data.image_size == 32 and "shipped weights" in window.log_panel.lines[-1]
    assert window.path is None and p.resolve(p.train.out_dir) == data_dir() / "runs"
    assert not any(e.key.startswith("model.") for e in preflight(p))  # nothing red but "choose your images"
    make_image_folder(tmp_path / "images", per_class=4)
    window.data_panel.use_source(str(tmp_path / "images"))
    path = tmp_path / "mine" / "first.thaw.toml"
    path.parent.mkdir()
    assert window.save_to(path)
    saved = projects.load(path)
    assert saved.train.out_dir == "runs" and saved.resolve(saved.train.out_dir) == path.parent / "runs"


def drop(window, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))


def test_dropping_a_folder_sets_the_data_and_a_project_file_opens(window, qtbot, tmp_path, project_factory):
    window.new_project()
    folder = make_image_folder(tmp_path / "dropped", per_class=4)
    with qtbot.waitSignal(window.data_panel.scanned, timeout=30_000):
        drop(window, folder)
    assert window.project.data.train == str(folder) and window.data_panel.sources.classes == ["circle", "square",
                                                                                             "triangle"]
    saved = tmp_path / "other.thaw.toml"
    projects.save(project_factory(name="other"), saved)
    drop(window, saved)
    assert window.project.name == "other" and window.path == saved
    assert dropped_choice(str(tmp_path / "notes.txt")) is None
    assert PROJECT_SUFFIX == projects.SUFFIX  # the start page names project files without importing the engine


def test_dialogs_open_in_the_project_folder_else_the_last_one_else_home(tmp_path):
    assert gui_settings.dialog_folder(None) == str(Path.home())
    gui_settings.remember_folder(tmp_path / "a.thaw.toml")
    assert gui_settings.dialog_folder(None) == str(tmp_path)
    (tmp_path / "sub").mkdir()
    assert gui_settings.dialog_folder(tmp_path / "sub") == str(tmp_path / "sub")
