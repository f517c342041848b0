"""The schedule under the checklist, in the window: a preset writes the engine's stages (one undoable edit), a
dragged boundary moves a stage, the timeline follows the epochs; during a run its "now" line and the tree's
"Learns" column show where the run is and which blocks learn."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from engine import events as ev
from engine.model.checklist import FROZEN, TRAINABLE
from gui.freeze.layer_tree import ACTIVITY, TYPE, activity_colour


@pytest.fixture
def shown(window, qtbot, project_factory):
    window.set_project(project_factory(train__epochs=6, freeze__preset="full"))
    window.resize(1280, 720)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_a_preset_is_one_undoable_edit_of_the_engines_stages(shown, qtbot):
    w = shown
    pane = w.freeze_panel.schedule
    qtbot.mouseClick(pane.buttons["gradual"], Qt.MouseButton.LeftButton)
    f = w.project.freeze
    assert f.preset == "feature_extraction" and [s["start"] for s in f.stages] == [0, 1, 2, 3, 4]
    assert w.freeze_panel.timeline.boundaries[0].start == 1 and w.dirty
    assert w.undo_action.text() == "&Undo freeze preset, unfreezing schedule"
    assert w.freeze_panel.tree_model.checklist.state("block1") == FROZEN  # the first stage shown in the tree

    w.undo_action.trigger()
    assert w.project.freeze.stages == [] and w.project.freeze.preset == "full"
    assert w.freeze_panel.timeline.boundaries == [] and w.freeze_panel.tree_model.checklist.state("block1") == TRAINABLE
    w.redo_action.trigger()
    assert len(w.project.freeze.stages) == 5


def test_dragging_a_boundary_moves_its_stage_and_the_epochs_move_the_timeline(shown, qtbot):
    w = shown
    qtbot.mouseClick(w.freeze_panel.schedule.buttons["backbone"], Qt.MouseButton.LeftButton)
    t = w.freeze_panel.timeline
    assert w.project.freeze.stages[0]["start"] == 3 and [b.start for b in t.boundaries] == [3]
    qtbot.mousePress(t, Qt.MouseButton.LeftButton, pos=QPoint(int(t.x_of(3)), 4))
    qtbot.mouseMove(t, QPoint(int(t.x_of(1.1)), 4))
    qtbot.mouseRelease(t, Qt.MouseButton.LeftButton, pos=QPoint(int(t.x_of(1.1)), 4))
    assert w.project.freeze.stages[0]["start"] == 1 and t.boundaries[0].start == 1
    assert w.undo_action.text() == "&Undo unfreezing schedule"
    assert t.plan_at(1.5).rate("block1") == pytest.approx(w.project.train.lr * 0.1)
    w.undo_action.trigger()
    assert w.project.freeze.stages[0]["start"] == 3

    w.training_panel.epochs.setText("12")
    w.training_panel.fields.commit("train.epochs")
    assert t.epochs == 12 and t.boundaries[0].high == 11


def activity(blocks=("stem", "block1", "block2", "block3", "head")):
    return ev.LayerActivity(global_step=50, epoch=2, blocks=blocks, trained=(False, False, True, True, True),
                            grad_norms=(0.0, 0.0, 0.2, 0.3, 0.5), update_ratios=(0.0, 0.0, 1e-3, 1e-1, 2e-5),
                            every=50)


def test_the_learns_column_shows_log10_of_each_blocks_update_ratio(shown, qtbot):
    panel = shown.freeze_panel
    model, tree = panel.tree_model, panel.tree
    assert tree.isColumnHidden(ACTIVITY) and not tree.isColumnHidden(TYPE)
    panel.show_activity(activity())
    assert not tree.isColumnHidden(ACTIVITY) and tree.isColumnHidden(TYPE)  # in the type's place
    assert tree.horizontalScrollBar().maximum() == 0

    def cell(path, role=Qt.ItemDataRole.DisplayRole):
        return model.index_of_path(path).siblingAtColumn(ACTIVITY).data(role)

    assert [cell(p) for p in ("stem", "block1", "block2", "block3", "fc")] == ["\u2013", "\u2013", "-3.0", "-1.0",
                                                                              "-4.7"]
    assert cell("block2", Qt.ItemDataRole.BackgroundRole).color() == activity_colour(-3.0)
    assert activity_colour(-3.0) != activity_colour(-1.0) != activity_colour(-5.0)
    assert "update ratio" in cell("block3", Qt.ItemDataRole.ToolTipRole) and "frozen" in cell(
        "stem", Qt.ItemDataRole.ToolTipRole)
    image = tree.viewport().grab().toImage()
    rect = tree.visualRect(model.index_of_path("block2").siblingAtColumn(ACTIVITY))
    assert image.pixelColor(rect.left() + 3, rect.center().y()) == activity_colour(-3.0)

    qtbot.mouseClick(panel.schedule.buttons["none"], Qt.MouseButton.LeftButton)  # an edit: the measurement is old
    assert model.activity == {} and tree.isColumnHidden(ACTIVITY)


def test_during_a_run_the_now_line_moves_and_the_tree_shows_the_stage_it_trains(shown, qtbot):
    w = shown
    w.project.set("train.activity_every", 1)
    w.project.set("train.activity_budget", 0.0)
    qtbot.mouseClick(w.freeze_panel.schedule.buttons["gradual"], Qt.MouseButton.LeftButton)
    nows, stages = [], []
    w.runs.now.connect(nows.append)
    w.runs.now.connect(lambda _n: stages.append(w.freeze_panel.tree_model.checklist.state("block3")))
    qtbot.waitUntil(w.start_action.isEnabled, timeout=30_000)  # the data is scanned
    with qtbot.waitSignal(w.run_finished, timeout=180_000):
        assert w.start()
    assert w.last_result is not None and w.last_result.epochs_completed == 6, w.last_error
    assert nows[-1] is None and max(n for n in nows if n is not None) == pytest.approx(6.0)
    assert stages[0] == FROZEN and TRAINABLE in stages  # block3 trains from epoch 2
    assert w.freeze_panel.timeline.now is None
    assert w.freeze_panel.tree_model.checklist.state("block3") == FROZEN  # the project's first stage again
    assert w.freeze_panel.tree_model.activity and not w.freeze_panel.tree.isColumnHidden(ACTIVITY)
    assert w.plots.activity.curves["block3"][1].n > 0 and w.plots.activity.curves["head"][1].n > \
        w.plots.activity.curves["block3"][1].n  # a block's curve begins when it first trains
