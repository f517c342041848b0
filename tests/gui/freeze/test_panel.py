import dataclasses

import pytest
import torch
import torchvision
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication

from engine.model.assemble import skeleton
from engine.model.checklist import Checklist, plan_for
from engine.model.digits_cnn import DigitsCNN
from engine.model.freezing import frozen_tensors
from engine.model.layers import describe, walk
from engine.model.zoo import DEMO_ARCH
from engine.project import FreezeSettings, ModelSettings, Project
from gui.freeze.layer_tree import TRAINABLE_COLUMN
from gui.freeze.panel import FreezePanel


def units(model):
    """Paths of the modules whose own parameters a plan freezes or not (leaves with parameters)."""
    return [x.path for x in walk(describe(model)) if x.own_params and x.own_params == x.total_params]


@pytest.fixture
def resnet():
    with torch.device("meta"):
        return torchvision.models.resnet18(num_classes=4)


def shown_panel(qtbot, model):
    """A freeze panel on `model` (head "fc"), all of it trainable, shown at 900x600; `settings` is its section."""
    p = FreezePanel()
    qtbot.addWidget(p)
    p.resize(900, 600)
    p.settings = FreezeSettings(preset="full")
    p.set_freeze_settings(p.settings)
    p.set_checklist(Checklist(model, ("fc",)))
    p.show()
    qtbot.waitExposed(p)
    return p


@pytest.fixture
def panel(qtbot, resnet):
    return shown_panel(qtbot, resnet)


def frozen_units(panel, model):
    plan = panel.current_plan()
    return {u for u in units(model) if plan.is_frozen(u) and not u.startswith("fc")}


def click_check_box(qtbot, panel, path):
    index = panel.tree_model.index_of_path(path).siblingAtColumn(TRAINABLE_COLUMN)
    panel.tree.scrollTo(index)
    rect = panel.tree.visualRect(index)
    qtbot.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() + 10, rect.center().y()))


def test_toggling_a_block_check_box_changes_plan_summary_and_project(panel, qtbot, resnet):
    before = panel.summary.text()
    assert before.startswith("Trainable 11,178,564 / 11,178,564 parameters (100.0%)")
    with qtbot.waitSignal(panel.changed):
        click_check_box(qtbot, panel, "layer1")
    assert frozen_units(panel, resnet) == {u for u in units(resnet) if u.startswith("layer1.")}
    assert panel.settings.preset == "custom" and panel.settings.frozen == ["layer1"]
    assert panel.preset_buttons["custom"].isVisible() and panel.preset_buttons["custom"].isChecked()
    assert panel.summary.text() != before and "(98.7%)" in panel.summary.text()
    assert "8 of 41 layers frozen" in panel.summary.text()
    with qtbot.waitSignal(panel.changed):
        click_check_box(qtbot, panel, "layer1")  # and back
    assert panel.settings.frozen == [] and frozen_units(panel, resnet) == set()


@pytest.mark.parametrize("preset", ["feature_extraction", "last_blocks", "full"])
def test_each_preset_matches_the_engine_plan_and_keeps_the_head(panel, qtbot, resnet, preset):
    panel.preset_buttons["feature_extraction" if preset == "full" else "full"].click()
    panel.tree.expand(panel.tree_model.index_of_path("layer2.0"))
    with qtbot.waitSignal(panel.changed):
        if preset == "last_blocks":
            panel.last_blocks.setValue(2)  # editing N selects "last N blocks"
        else:
            panel.preset_buttons[preset].click()
    engine = plan_for(resnet, preset, last_blocks=2, head_paths=("fc",))
    assert frozen_units(panel, resnet) == {u for u in units(resnet) if engine.is_frozen(u)}
    assert panel.settings.preset == preset and panel.preset_buttons[preset].isChecked()
    assert not panel.preset_buttons["custom"].isVisible()
    assert panel.tree.isExpanded(panel.tree_model.index_of_path("layer2.0"))  # a preset keeps the view as it was
    assert panel.tree_model.index_of_path("fc").siblingAtColumn(TRAINABLE_COLUMN).data() == "new"
    trainable = int(panel.summary.text().split()[1].replace(",", ""))
    assert trainable >= 512 * 4 + 4  # the head is always trained
    if preset == "feature_extraction":
        assert trainable == 512 * 4 + 4


def test_last_blocks_freezes_up_to_the_boundary_and_the_timeline_shows_it(panel, qtbot):
    panel.last_blocks.setValue(1)
    panel.preset_buttons["last_blocks"].setChecked(True)
    timeline = panel.timeline
    assert timeline.lanes() == ("conv1", "layer1", "layer2", "layer3", "layer4", "head")
    assert [(a, b) for a, b, _ in timeline.columns] == [(0, panel._train.epochs)]  # one stage from start to end
    rates = timeline.columns[0][2].rates
    assert rates[:4] == (None,) * 4 and rates[4] == pytest.approx(1e-4) and rates[5] == pytest.approx(1e-3)
    with qtbot.waitSignal(timeline.module_clicked) as clicked:
        g = timeline.grid()
        qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton,
                         pos=QPoint(int(g.center().x()), int(g.top() + 4.5 * g.height() / 6)))
    assert clicked.args == ["layer4"]


def run_context_action(panel, qtbot, path, label):
    """Right-click a row and pick `label` from the real menu."""
    index = panel.tree_model.index_of_path(path)
    panel.tree.scrollTo(index)

    def pick():
        menu = QApplication.activePopupWidget()
        action = next(a for a in menu.actions() if a.text() == label)
        assert action.isEnabled()
        action.trigger()
        menu.close()

    QTimer.singleShot(0, pick)
    panel.tree.customContextMenuRequested.emit(panel.tree.visualRect(index).center())


def test_context_menu_actions_give_the_expected_plan(panel, qtbot, resnet):
    def frozen_tops():
        return set(panel.current_plan().frozen)

    run_context_action(panel, qtbot, "layer2", "Freeze up to here")
    assert frozen_tops() == {"conv1", "bn1", "layer1", "layer2"}
    assert (panel.settings.preset, panel.settings.last_blocks) == ("last_blocks", 2)  # ticks that equal a preset
    assert panel.preset_buttons["last_blocks"].isChecked() and panel.last_blocks.value() == 2
    run_context_action(panel, qtbot, "layer1", "Unfreeze from here")
    assert frozen_tops() == {"conv1", "bn1"}
    assert (panel.settings.preset, panel.settings.last_blocks) == ("last_blocks", 4)
    run_context_action(panel, qtbot, "layer3", "Freeze only this")
    assert frozen_tops() == {"layer3"}
    assert panel.settings.preset == "custom" and panel.settings.frozen == ["layer3"]
    assert frozen_units(panel, resnet) == {u for u in units(resnet) if u.startswith("layer3.")}


def test_batchnorm_policy_writes_the_project_and_the_plan(panel, qtbot):
    with qtbot.waitSignal(panel.changed):
        panel.bn_policy.setCurrentIndex(1)
    assert panel.settings.train_frozen_bn is True and panel.current_plan().train_frozen_bn is True


def test_read_only_blocks_every_edit_visibly(panel, qtbot, resnet):
    panel.set_read_only(True)
    assert panel.read_only_label.isVisible()
    assert not panel.preset_buttons["feature_extraction"].isEnabled() and not panel.bn_policy.isEnabled()
    with qtbot.assertNotEmitted(panel.changed):
        click_check_box(qtbot, panel, "layer1")
    assert panel.settings.preset == "full" and frozen_units(panel, resnet) == set()
    panel.set_read_only(False)
    with qtbot.waitSignal(panel.changed):
        click_check_box(qtbot, panel, "layer1")


def test_opening_a_project_shows_its_custom_plan_without_a_change(qtbot):
    model = DigitsCNN(num_classes=3)
    panel = FreezePanel()
    qtbot.addWidget(panel)
    settings = FreezeSettings(preset="custom", frozen=["stem", "block1"], train_frozen_bn=True)
    before = dataclasses.replace(settings, frozen=list(settings.frozen))
    with qtbot.assertNotEmitted(panel.changed):
        panel.set_freeze_settings(settings)
        panel.set_checklist(Checklist(model, ("fc",)))
    assert panel.current_plan().frozen == {"stem", "block1"} and panel.current_plan().train_frozen_bn
    assert panel.bn_policy.currentIndex() == 1 and panel.preset_buttons["custom"].isChecked()
    assert settings == before  # showing it changed nothing in it


def test_plan_matches_the_engine_skeleton_for_the_demo_project(qtbot):
    project = Project(model=ModelSettings(arch=DEMO_ARCH, weights="none"))
    project.freeze.preset, project.freeze.last_blocks = "last_blocks", 2
    skel = skeleton(project, 3)
    panel = FreezePanel()
    qtbot.addWidget(panel)
    panel.set_freeze_settings(project.freeze)
    panel.set_checklist(Checklist(skel.model, skel.head_paths))
    assert frozen_tensors(skel.model, panel.current_plan(), skel.head_paths) == frozen_tensors(
        skel.model, skel.plan, skel.head_paths
    )
    assert frozen_tensors(skel.model, skel.plan, skel.head_paths)  # something is frozen at all


def test_hand_edits_on_a_vit_keep_its_loose_tensors_frozen(qtbot):
    skel = skeleton(Project(model=ModelSettings(arch="vit_b_16", weights="none")), 3)
    model, heads = skel.model, skel.head_paths
    panel = FreezePanel()
    qtbot.addWidget(panel)
    settings = FreezeSettings()  # feature extraction
    panel.set_freeze_settings(settings)
    panel.set_checklist(Checklist(model, heads))
    panel.tree_model.set_trainable("encoder.layers.encoder_layer_11", True)
    assert settings.preset == "custom" and "class_token" in settings.frozen
    custom = plan_for(model, "custom", frozen=settings.frozen, head_paths=heads)
    before = frozen_tensors(model, plan_for(model, "feature_extraction", head_paths=heads), heads)
    thawed = {n for n in before if n.startswith("encoder.layers.encoder_layer_11.")}
    assert thawed and frozen_tensors(model, custom, heads) == before - thawed


def test_a_kept_head_is_marked_kept_not_new(panel, resnet):
    cell = lambda: panel.tree_model.index_of_path("fc").siblingAtColumn(TRAINABLE_COLUMN)  # noqa: E731
    panel.set_checklist(Checklist(resnet, ("fc",)), head_kept=True)
    assert cell().data() == "kept"
    assert "the kept head: always trained" in cell().data(Qt.ItemDataRole.ToolTipRole)
    panel.set_checklist(Checklist(resnet, ("fc",)))
    assert cell().data() == "new"
