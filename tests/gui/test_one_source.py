"""The window shows what the engine says, and says it once: the four contradictions found when the window was
tried as a new user would (each of these failed before the checklist and the preflight moved to the engine)."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt
from safetensors.torch import save_file
from torchvision.models import resnet18

from engine import project as projects
from engine.model.assemble import assemble
from engine.model.checklist import UNKNOWN_COUNT
from gui.freeze.layer_tree import PARAMS
from gui.panels.fields import is_marked
from tests.gui.panels.util import type_into


def settled(window) -> bool:
    """The data is scanned and the window has checked the project against the scan."""
    return not window.data_panel.is_scanning() and window.data_panel.sources is not None


def pick_architecture(qtbot, window, name: str) -> None:
    """Type the name into the model panel's search and press Return, as a person would."""
    search = window.model_panel.search
    search.clear()
    qtbot.keyClicks(search, name)
    qtbot.keyClick(search, Qt.Key.Key_Return)
    assert window.project.model.arch == name


def test_a_custom_plan_is_reset_when_another_architecture_is_picked(window, qtbot):
    assert window.open_demo("inductive")
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    window.freeze_panel.tree_model.set_trainable("block1", True)  # the demo freezes stem..block2: now custom
    assert window.project.freeze.preset == "custom"
    pick_architecture(qtbot, window, "resnet18")
    tree = window.freeze_panel.tree_model
    assert tree.rowCount() == 1 and tree.has_path("layer4")  # the checklist shows the new model
    assert window.project.freeze.preset == "feature_extraction" and window.project.freeze.frozen == []
    assert any("does not fit this model" in line and "reset to feature extraction" in line
               for line in window.log_panel.lines)
    assert not any(p.startswith("freeze.") for p in window.problems())
    window.freeze_panel.preset_buttons["full"].click()  # and a preset takes effect
    assert window.project.freeze.preset == "full" and window.freeze_panel.current_plan().frozen == frozenset()
    assert "model.weights" in window.start_reason.text()  # resnet18's pretrained file is not on this machine


def test_a_weights_file_of_another_architecture_disables_start_beside_its_field(window, qtbot, project_factory,
                                                                                  tmp_path):
    path = tmp_path / "resnet18.safetensors"
    save_file(resnet18().state_dict(), str(path))
    window.set_project(project_factory(model__arch="mobilenet_v3_small", model__weights=str(path)))
    qtbot.waitUntil(lambda: settled(window), timeout=30_000)
    assert not window.start_action.isEnabled()
    assert "model.weights" in window.start_reason.text() and "does not fit" in window.start_reason.toolTip()
    assert is_marked(window.model_panel.weights_box)
    assert not window.start()


def test_the_input_size_an_architecture_forces_is_said_beside_the_field_before_start(window, qtbot,
                                                                                      project_factory):
    window.set_project(project_factory(model__arch="vit_h_14", data__image_size=224))
    qtbot.waitUntil(lambda: settled(window), timeout=30_000)
    note = window.data_panel.size_note
    assert not note.isHidden() and "518" in note.text() and "GFLOPs per image" in note.text()


def fc_outputs(window) -> int:
    """How many outputs the head row of the checklist has (the demo's cosine head: 512 inputs, a scale)."""
    checklist = window.freeze_panel.checklist
    return (checklist.infos[checklist.index("fc")].total_params - 1) // 512


def test_the_tree_and_the_head_panel_size_the_head_from_the_same_scan(window, qtbot):
    assert window.open_demo("inductive")
    qtbot.waitUntil(lambda: settled(window), timeout=30_000)
    openers = [lambda: window.open_demo("inductive"),                  # the Demo menu
               lambda: window.recent_menu.actions()[0].trigger(),      # File > Open Recent
               lambda: window.demo_actions["transductive"].trigger()]  # another demo, also five classes
    for open_again in openers:
        open_again()
        qtbot.waitUntil(lambda: settled(window), timeout=30_000)
        assert fc_outputs(window) == 5
        assert window.head_panel.description.text().endswith("-> 5")
        assert window.head_panel.classes.text().startswith("5 ")


def head_row(window):
    """The tree's row of the head: its parameter count as shown, and its tooltip."""
    tree = window.freeze_panel.tree_model
    cell = tree.index_of_path(window.freeze_panel.checklist.head_paths[0]).siblingAtColumn(PARAMS)
    return cell.data(), cell.data(Qt.ItemDataRole.ToolTipRole)


def shows_unknown(window) -> bool:
    """The tree's head row, the Head tab and the summary line show the head's count as unknown, and say why."""
    text, tip = head_row(window)
    params = window.head_panel.params
    summary = window.freeze_panel.summary
    return (text == params.text() == "?" and UNKNOWN_COUNT in tip and params.toolTip() == UNKNOWN_COUNT
            and summary.text().startswith("Trainable ? / ? parameters") and summary.toolTip() == UNKNOWN_COUNT)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_the_head_count_is_unknown_until_the_scan_then_the_real_models(window, qtbot, project_factory, kind):
    project = project_factory(model__arch="resnet18", head__kind=kind, head__hidden=[64])
    window.set_project(project)
    assert shows_unknown(window)  # the scan's answer has not arrived: nothing is processed before it
    qtbot.waitUntil(lambda: settled(window), timeout=30_000)
    classes = window.data_panel.sources.classes
    real = assemble(project, len(classes), classes=classes)
    count = sum(p.numel() for h in real.head_paths for p in real.model.get_submodule(h).parameters())
    assert head_row(window)[0] == window.head_panel.params.text() == f"{count:,}"
    assert window.freeze_panel.checklist.summary()[1] == sum(p.numel() for p in real.model.parameters())


def test_without_data_the_head_count_stays_unknown(window, qtbot):
    assert not window.project.data.train and not window.data_panel.is_scanning()
    assert shows_unknown(window)
    kind = window.head_panel.kind
    kind.setCurrentIndex(kind.findData("cosine"))
    kind.activated.emit(kind.currentIndex())
    assert window.project.head.kind == "cosine" and shows_unknown(window)


def test_save_refuses_while_a_field_shows_what_the_project_cannot_take(window, qtbot, tmp_path, project_factory):
    path = tmp_path / "p.thaw.toml"
    window.set_project(project_factory(train__early_stop_patience=2))
    assert window.save_to(path)
    before = path.read_text()
    panel = window.training_panel
    for edit, text in ((panel.lr, "1e9"), (panel.epochs, "abc"), (panel.early_stop_patience, "3.7")):
        type_into(qtbot, edit, text)
        assert is_marked(edit)
    assert not window.save_to(path)
    assert path.read_text() == before  # the file was not touched
    message = window.error_box.text()
    assert "train.lr" in message and "train.epochs" in message and "train.early_stop_patience" in message
    assert window.dirty  # nothing is lost: the window still has the edits
    for edit, text in ((panel.lr, "0.05"), (panel.epochs, "7"), (panel.early_stop_patience, "3")):
        type_into(qtbot, edit, text)
    assert window.save_to(path)
    saved = projects.load(path).train
    assert (saved.lr, saved.epochs, saved.early_stop_patience) == (0.05, 7, 3)  # exactly what the fields show


def test_the_command_line_refuses_the_same_weights_file_before_training(tmp_path, project_factory, capsys):
    from engine.cli import main

    path = tmp_path / "resnet18.safetensors"
    save_file(resnet18().state_dict(), str(path))
    projects.save(project_factory(model__arch="mobilenet_v3_small", model__weights=str(path)), tmp_path / "p.thaw.toml")
    assert main(["train", str(tmp_path / "p.thaw.toml"), "--out", str(tmp_path / "run")]) == 2
    assert "error: model.weights:" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    torch.manual_seed(0)  # the state dict above drew from the global generator


def test_start_waits_for_the_scan_of_a_path_just_typed(window, qtbot, project_factory, tmp_path):
    from tests.imagesets import make_image_folder

    window.set_project(project_factory())
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    make_image_folder(tmp_path / "other", per_class=1, classes=("a", "b"))  # one image a class: no split
    type_into(qtbot, window.data_panel.train, str(tmp_path / "other"))
    assert not window.start_action.isEnabled() and "press Return" in window.start_reason.text()
    with qtbot.waitSignal(window.data_panel.scanned, timeout=30_000):
        qtbot.keyClick(window.data_panel.train, Qt.Key.Key_Return)
    assert not window.start_action.isEnabled() and "data.val_fraction" in window.start_reason.text()
