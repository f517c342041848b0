"""Undo and redo (Edit menu, Ctrl+Z / Ctrl+Shift+Z): typed fields, the checklist, an architecture change with
the plan reset it brings, a data source, the unsaved mark, and nothing while a run holds the project."""

from __future__ import annotations

import shutil

from PySide6.QtCore import QPoint, Qt

from gui.freeze.layer_tree import TRAINABLE_COLUMN
from gui.undo import changed_keys


def _type(qtbot, edit, text: str) -> None:
    """Type `text` into an emptied field, key by key, as a person does."""
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(edit, text)


def _click_trainable(qtbot, window, path: str) -> None:
    tree, model = window.freeze_panel.tree, window.freeze_panel.tree_model
    index = model.index_of_path(path).siblingAtColumn(TRAINABLE_COLUMN)
    tree.scrollTo(index)
    rect = tree.visualRect(index)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() + 10, rect.center().y()))


def _frozen(window) -> set[str]:
    return set(window.freeze_panel.current_plan().frozen)


def test_keystrokes_into_one_field_are_one_step(window, qtbot, project_factory):
    window.set_project(project_factory())
    lr, start = window.training_panel.lr, window.project.train.lr
    assert start != 0.05 and not window.undo_action.isEnabled() and window.undo_action.text() == "&Undo"
    _type(qtbot, lr, "0.05")
    assert window.project.train.lr == 0.05 and window.dirty
    assert window.history.stack.count() == 1 and window.undo_action.text() == "&Undo train.lr"

    window.undo_action.trigger()
    assert window.project.train.lr == start and lr.text() == f"{start:g}"
    assert not window.dirty and not window.windowTitle().startswith("untitled*")
    assert window.redo_action.isEnabled() and window.redo_action.text() == "&Redo train.lr"
    window.redo_action.trigger()
    assert window.project.train.lr == 0.05 and lr.text() == "0.05" and window.dirty

    _type(qtbot, window.training_panel.epochs, "3")  # another field: a step of its own
    assert window.history.stack.count() == 2
    window.undo_action.trigger()
    assert window.project.train.epochs == 2 and window.project.train.lr == 0.05


def test_each_checklist_edit_is_a_step_and_ctrl_z_takes_them_back(window, qtbot, project_factory):
    window.set_project(project_factory())
    window.show()
    qtbot.waitExposed(window)
    before = _frozen(window)
    _click_trainable(qtbot, window, "block1")
    after_one = _frozen(window)
    _click_trainable(qtbot, window, "block2")
    assert before != after_one != _frozen(window) and window.history.stack.count() == 2
    assert window.undo_action.text() == "&Undo layer checklist"

    with qtbot.waitActive(window):  # shortcuts go to the active window
        window.activateWindow()
    window.freeze_panel.tree.setFocus()
    qtbot.keyClick(window.freeze_panel.tree, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _frozen(window) == after_one
    qtbot.keyClick(window.freeze_panel.tree, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _frozen(window) == before and window.project.freeze.preset == "full"
    shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window.freeze_panel.tree, Qt.Key.Key_Z, shift)
    assert _frozen(window) == after_one and window.project.freeze.preset == "custom"


def test_an_architecture_change_and_the_plan_it_reset_are_undone_together(window, qtbot, project_factory):
    window.set_project(project_factory())
    window.show()
    qtbot.waitExposed(window)
    _click_trainable(qtbot, window, "block1")
    custom = list(window.project.freeze.frozen)
    assert window.project.freeze.preset == "custom" and custom

    window.model_panel._pick("resnet18")  # the list's own path for a picked row
    assert window.project.model.arch == "resnet18" and window.project.freeze.preset != "custom"
    assert window.undo_action.text() == "&Undo model.arch"  # and the plan it reset

    window.undo_action.trigger()
    assert window.project.model.arch == "thaw_digits_cnn"
    assert window.project.freeze.preset == "custom" and window.project.freeze.frozen == custom
    assert "block1" in window.freeze_panel.checklist.blocks and _frozen(window) == set(custom)


def test_undoing_a_data_source_scans_the_old_one_again(window, qtbot, project_factory, tmp_path):
    window.set_project(project_factory())
    qtbot.waitUntil(lambda: window.data_panel.sources is not None, timeout=30_000)
    first = window.data_panel.sources.classes
    other = tmp_path / "two"
    for name in ("circle", "square"):
        shutil.copytree(window.project.resolve(window.project.data.train) / name, other / name)
    assert window.data_panel.use_source(str(other))
    qtbot.waitUntil(lambda: window.data_panel.sources is not None, timeout=30_000)
    assert window.data_panel.sources.classes == ["circle", "square"]

    window.undo_action.trigger()
    assert window.data_panel.train.text() == window.project.data.train != str(other)
    qtbot.waitUntil(lambda: window.data_panel.sources is not None, timeout=30_000)
    assert window.data_panel.sources.classes == first and len(first) == 3


def test_saving_marks_the_clean_step(window, qtbot, project_factory, tmp_path):
    window.set_project(project_factory())
    _type(qtbot, window.training_panel.epochs, "4")
    assert window.save_to(tmp_path / "p.thaw.toml") and not window.dirty
    _type(qtbot, window.training_panel.epochs, "5")
    assert window.dirty
    window.undo_action.trigger()
    assert window.project.train.epochs == 4 and not window.dirty  # back to what is on disk
    window.undo_action.trigger()
    assert window.project.train.epochs == 2 and window.dirty


def test_no_undo_while_a_run_holds_the_project(window, qtbot, project_factory):
    window.set_project(project_factory(train__epochs=50, train__device="cpu", train__amp=False))
    _type(qtbot, window.training_panel.seed, "3")
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    assert window.undo_action.isEnabled()
    assert window.start()
    assert not window.undo_action.isEnabled() and not window.redo_action.isEnabled()
    window.undo()  # the Edit menu is off; nor may a direct call change a running project
    assert window.project.train.seed == 3
    window.stop_and_join()
    qtbot.waitUntil(lambda: not window.is_running(), timeout=30_000)
    assert window.undo_action.isEnabled()


def test_changed_keys_name_what_differs_in_the_projects_order():
    before = {"name": "a", "train": {"lr": 0.1, "epochs": 2}, "data": {"train": "x"}}
    after = {"name": "b", "train": {"lr": 0.2, "epochs": 2}, "data": {"train": "y"}}
    assert changed_keys(before, after) == ("name", "data.train", "train.lr")
    assert changed_keys(after, after) == ()
