"""The checklist's Qt item model: a well-behaved Qt model over the engine's `Checklist`, edits by check box."""

import pytest
from PySide6.QtCore import Qt

from engine.model.checklist import Checklist
from engine.model.digits_cnn import DigitsCNN
from gui.freeze.layer_tree import TRAINABLE_COLUMN, LayerTreeModel

CHECK = Qt.ItemDataRole.CheckStateRole


@pytest.fixture
def demo(qtbot):
    tree = LayerTreeModel()
    tree.set_checklist(Checklist(DigitsCNN(num_classes=3), ("fc",)))
    return tree


def cell(tree, path):
    return tree.index_of_path(path).siblingAtColumn(TRAINABLE_COLUMN)


def test_is_a_well_behaved_qt_model(demo, qtmodeltester):
    qtmodeltester.check(demo)
    root = demo.index(0, 0)
    assert demo.rowCount(root) == 6  # stem, block1..3, pool, fc
    assert [demo.path_of(demo.index(r, 0, root)) for r in range(6)] == ["stem", "block1", "block2", "block3", "pool", "fc"]
    empty = LayerTreeModel()
    assert empty.rowCount() == 0 and not empty.index(0, 0).isValid()


def test_unchecking_a_block_edits_the_checklist_and_repaints_its_rows(demo, qtbot):
    painted = []
    demo.dataChanged.connect(lambda top, bottom, roles: painted.append((demo.path_of(top), demo.path_of(bottom))))
    with qtbot.waitSignal(demo.edited):
        assert demo.setData(cell(demo, "block2"), Qt.CheckState.Unchecked.value, CHECK)
    assert demo.checklist.frozen_paths() == {"block2"}
    assert cell(demo, "block2.0").data(CHECK) == Qt.CheckState.Unchecked  # the conv inside
    assert cell(demo, "").data(CHECK) == Qt.CheckState.PartiallyChecked  # the whole model: partly
    assert "\u2744" in cell(demo, "block2").data()
    # one span per parent: the root, the root's children (block2 among them), block2's children
    assert painted == [("", ""), ("stem", "fc"), ("block2.0", "block2.3")]
    demo.setData(cell(demo, "block2"), Qt.CheckState.Checked, CHECK)
    assert demo.checklist.frozen_paths() == frozenset()


def test_the_head_is_not_checkable(demo):
    head = cell(demo, "fc")
    assert not (demo.flags(head) & Qt.ItemFlag.ItemIsUserCheckable)
    assert not demo.setData(head, Qt.CheckState.Unchecked, CHECK)
    assert head.data() == "new" and head.data(CHECK) == Qt.CheckState.Checked
    assert "the new head: always trained" in head.data(Qt.ItemDataRole.ToolTipRole)


def test_changes_that_are_not_edits_announce_nothing(demo, qtbot):
    with qtbot.assertNotEmitted(demo.edited):
        demo.show_change(lambda c: c.apply_preset("feature_extraction"))
    assert cell(demo, "block1").data(CHECK) == Qt.CheckState.Unchecked


def test_read_only_rejects_check_box_edits(demo, qtbot):
    demo.set_read_only(True)
    index = cell(demo, "block1")
    assert not (demo.flags(index) & Qt.ItemFlag.ItemIsUserCheckable)
    with qtbot.assertNotEmitted(demo.edited):
        demo.freeze_up_to("block1")
    assert demo.checklist.frozen_paths() == frozenset()
    demo.set_read_only(False)
    assert demo.setData(index, Qt.CheckState.Unchecked, CHECK)
