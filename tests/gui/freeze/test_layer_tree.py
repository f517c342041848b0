import pytest
import torch
from PySide6.QtCore import Qt
from torch import nn

from engine.model.checklist import plan_for
from engine.model.digits_cnn import DigitsCNN
from engine.model.layers import describe
from gui.freeze.layer_tree import (
    FROZEN_ROW,
    HEAD_ROW,
    PARTLY_ROW,
    TRAINABLE,
    TRAINABLE_ROW,
    LayerTreeModel,
    loose_tensors,
)

CHECK = Qt.ItemDataRole.CheckStateRole


@pytest.fixture
def demo_model():
    return DigitsCNN(num_classes=3)


@pytest.fixture
def demo(qtbot, demo_model):
    model = demo_model
    tree = LayerTreeModel()
    tree.set_tree(describe(model, None, ("fc",)), ("fc",))
    return tree


def check_state(tree, path):
    return tree.index_of_path(path).siblingAtColumn(TRAINABLE).data(CHECK)


def test_is_a_well_behaved_qt_model(demo, qtmodeltester):
    qtmodeltester.check(demo)
    root = demo.index(0, 0)
    assert demo.rowCount(root) == 6  # stem, block1..3, pool, fc
    assert [demo.path_of(demo.index(r, 0, root)) for r in range(6)] == ["stem", "block1", "block2", "block3", "pool", "fc"]


def test_unchecking_a_block_freezes_everything_inside(demo, qtbot):
    index = demo.index_of_path("block2").siblingAtColumn(TRAINABLE)
    with qtbot.waitSignal(demo.edited):
        assert demo.setData(index, Qt.CheckState.Unchecked.value, CHECK)
    assert demo.frozen_paths() == {"block2"}
    assert check_state(demo, "block2.0") == Qt.CheckState.Unchecked  # the conv inside
    assert check_state(demo, "block2") == Qt.CheckState.Unchecked
    assert check_state(demo, "") == Qt.CheckState.PartiallyChecked  # the whole model: partly
    assert "\u2744" in index.data()


def test_parents_are_tri_state_and_checking_a_partial_parent_trains_all(demo):
    demo.set_trainable("block1.0", False)  # the conv only
    assert demo.row_state("block1") == PARTLY_ROW
    assert check_state(demo, "block1") == Qt.CheckState.PartiallyChecked
    demo.set_trainable("block1.1", False)  # and its BatchNorm: now the whole block is frozen
    assert demo.row_state("block1") == FROZEN_ROW
    assert demo.frozen_paths() == {"block1"}
    demo.setData(demo.index_of_path("block1").siblingAtColumn(TRAINABLE), Qt.CheckState.Checked, CHECK)
    assert demo.frozen_paths() == frozenset()


def test_head_stays_trainable_and_cannot_be_unchecked(demo, demo_model):
    head = demo.index_of_path("fc").siblingAtColumn(TRAINABLE)
    assert not (demo.flags(head) & Qt.ItemFlag.ItemIsUserCheckable)
    assert not demo.setData(head, Qt.CheckState.Unchecked, CHECK)
    demo.set_trainable("", False)  # uncheck the whole model
    assert demo.row_state("fc") == HEAD_ROW and head.data(CHECK) == Qt.CheckState.Checked
    assert head.data() == "new"
    assert demo.frozen_paths() == {"stem", "block1", "block2", "block3"}  # pool has no parameters
    trainable, total, frozen, layers = demo.summary()
    assert trainable == sum(p.numel() for p in demo_model.fc.parameters()) and frozen == layers - 1


def test_context_actions_move_the_freeze_boundary(demo):
    demo.freeze_up_to("block2")
    assert demo.frozen_paths() == {"stem", "block1", "block2"}
    demo.unfreeze_from("block1")
    assert demo.frozen_paths() == {"stem"}
    demo.freeze_only("block3")
    assert demo.frozen_paths() == {"block3"}
    assert demo.row_state("stem") == TRAINABLE_ROW


class _Embed(nn.Module):
    """A module with its own parameter *and* a child with parameters, like a ViT encoder."""

    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(4))
        self.proj = nn.Linear(4, 4)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = _Embed()
        self.fc = nn.Linear(4, 2)


def test_own_parameters_of_a_parent_are_a_unit_named_by_tensor(qtbot):
    net = _Net()
    tree = LayerTreeModel()
    tree.set_tree(describe(net, None, ("fc",)), ("fc",), loose_tensors(net))
    tree.set_trainable("embed.proj", False)
    assert tree.frozen_paths() == {"embed.proj"}  # `embed.pos` is a unit of its own and still trains
    assert tree.row_state("embed") == PARTLY_ROW
    tree.set_trainable("embed", False)
    assert tree.frozen_paths() == {"embed"}
    tree.unfreeze_from("embed.proj")
    assert tree.frozen_paths() == {"embed.pos"}  # named as a tensor, as the engine's plans do
    assert tree.summary() == (30, 34, 1, 3)
    plan = plan_for(net, "custom", frozen=tree.frozen_paths(), head_paths=("fc",))
    tree.set_frozen(plan.is_frozen)
    assert tree.frozen_paths() == {"embed.pos"}


def test_set_frozen_reads_a_predicate_without_announcing_an_edit(demo, qtbot):
    with qtbot.assertNotEmitted(demo.edited):
        demo.set_frozen(lambda path: path.startswith(("stem", "block1")) or path == "fc")
    assert demo.frozen_paths() == {"stem", "block1"}  # the head ignores the predicate


def test_read_only_rejects_check_box_edits(demo):
    demo.set_read_only(True)
    index = demo.index_of_path("block1").siblingAtColumn(TRAINABLE)
    assert not demo.setData(index, Qt.CheckState.Unchecked, CHECK)
    assert demo.frozen_paths() == frozenset()
    demo.set_read_only(False)
    assert demo.setData(index, Qt.CheckState.Unchecked, CHECK)
