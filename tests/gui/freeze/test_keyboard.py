"""The layer checklist from the keyboard: arrows move, Space ticks as a click does, Return opens and closes."""

import dataclasses

import pytest
import torch
import torchvision
from PySide6.QtCore import Qt

from gui.freeze.layer_tree import TRAINABLE_COLUMN
from tests.gui.freeze.test_panel import click_check_box, shown_panel

CHECK = Qt.ItemDataRole.CheckStateRole


def make_panel(qtbot):
    with torch.device("meta"):
        resnet = torchvision.models.resnet18(num_classes=4)
    return shown_panel(qtbot, resnet)


@pytest.fixture
def panels(qtbot):
    """Two panels on the same model: one the mouse drives, one the keyboard."""
    return make_panel(qtbot), make_panel(qtbot)


def go_to(panel, path):
    panel.tree.setCurrentIndex(panel.tree_model.index_of_path(path))


def press(qtbot, panel, key):
    qtbot.keyClick(panel.tree, key)


def current(panel):
    return panel.tree_model.path_of(panel.tree.currentIndex())


def check_state(panel, path):
    return panel.tree_model.index_of_path(path).siblingAtColumn(TRAINABLE_COLUMN).data(CHECK)


def same_outcome(mouse, keys):
    """The project's [freeze] section, the engine's counts and the ticks are the same after either."""
    assert keys.settings == mouse.settings
    assert keys.checklist.summary() == mouse.checklist.summary()
    assert keys.checklist.frozen_paths() == mouse.checklist.frozen_paths()
    assert keys.summary.text() == mouse.summary.text()


def test_arrows_move_and_space_ticks_the_current_row_as_a_click_does(panels, qtbot):
    mouse, keys = panels
    go_to(keys, "")
    for _ in range(5):  # the model, then conv1, bn1, relu, maxpool, layer1
        press(qtbot, keys, Qt.Key.Key_Down)
    assert current(keys) == "layer1"
    with qtbot.waitSignal(keys.changed):
        press(qtbot, keys, Qt.Key.Key_Space)
    with qtbot.waitSignal(mouse.changed):
        click_check_box(qtbot, mouse, "layer1")
    assert keys.settings.preset == "custom" and keys.settings.frozen == ["layer1"]
    same_outcome(mouse, keys)
    press(qtbot, keys, Qt.Key.Key_Space)  # and back
    click_check_box(qtbot, mouse, "layer1")
    assert keys.settings.preset == "full" and keys.settings.frozen == []
    same_outcome(mouse, keys)


def test_space_on_a_partly_ticked_row_trains_all_of_it_as_a_click_does(panels, qtbot):
    mouse, keys = panels
    for panel in panels:
        panel.tree_model.set_trainable("layer2.0", False)
    go_to(keys, "layer2")
    assert check_state(keys, "layer2") == Qt.CheckState.PartiallyChecked
    with qtbot.waitSignal(keys.changed):
        press(qtbot, keys, Qt.Key.Key_Space)
    click_check_box(qtbot, mouse, "layer2")
    assert check_state(keys, "layer2") == Qt.CheckState.Checked
    assert keys.settings.preset == "full"
    same_outcome(mouse, keys)


@pytest.mark.parametrize("path", ["fc", "relu"])  # the head is always trained; a ReLU has nothing to freeze
def test_space_on_a_row_that_cannot_change_does_nothing(panels, qtbot, path):
    _, keys = panels
    before = (dataclasses.replace(keys.settings, frozen=list(keys.settings.frozen)), keys.checklist.summary(), check_state(keys, path))
    go_to(keys, path)
    with qtbot.assertNotEmitted(keys.changed):
        press(qtbot, keys, Qt.Key.Key_Space)
    assert (keys.settings, keys.checklist.summary(), check_state(keys, path)) == before


def test_space_does_nothing_while_read_only(panels, qtbot):
    _, keys = panels
    keys.set_read_only(True)
    go_to(keys, "layer1")
    with qtbot.assertNotEmitted(keys.changed):
        press(qtbot, keys, Qt.Key.Key_Space)
    assert keys.settings.frozen == [] and keys.checklist.frozen_paths() == frozenset()


@pytest.mark.parametrize("key", [Qt.Key.Key_Return, Qt.Key.Key_Enter])
def test_return_opens_and_closes_the_current_row(panels, qtbot, key):
    _, keys = panels
    layer1 = keys.tree_model.index_of_path("layer1")
    keys.tree.setCurrentIndex(layer1.siblingAtColumn(TRAINABLE_COLUMN))  # from any column of the row
    assert not keys.tree.isExpanded(layer1)
    press(qtbot, keys, key)
    assert keys.tree.isExpanded(layer1)
    press(qtbot, keys, Qt.Key.Key_Down)
    assert current(keys) == "layer1.0"  # the arrows walk into the opened row
    press(qtbot, keys, Qt.Key.Key_Up)
    press(qtbot, keys, key)
    assert not keys.tree.isExpanded(layer1)
    assert keys.settings.frozen == []  # opening a row edits nothing
