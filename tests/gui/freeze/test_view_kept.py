"""A rebuilt checklist (another head, the classes found) keeps the rows a person opened, the current row and the
scroll position, matched by module path; rows that are new open as in a new tree."""

from PySide6.QtCore import QPoint

from engine.model.assemble import skeleton
from engine.model.checklist import Checklist
from engine.project import ModelSettings, Project
from gui.freeze.panel import FreezePanel

OPENED = ("layer2", "layer2.0", "layer3.1")


def resnet_checklist(kind="linear", arch="resnet18"):
    project = Project(model=ModelSettings(arch=arch, weights="none"))
    project.head.kind, project.head.hidden = kind, [64]
    built = skeleton(project, 3, freeze=False)
    return Checklist(built.model, built.head_paths)


def test_another_head_keeps_the_open_rows_the_current_row_and_the_scroll_position(qtbot):
    panel = FreezePanel()
    qtbot.addWidget(panel)
    panel.resize(900, 300)
    panel.set_checklist(resnet_checklist())
    panel.show()
    qtbot.waitExposed(panel)
    for path in OPENED:
        panel.tree.expand(panel.tree_model.index_of_path(path))
    panel.tree.setCurrentIndex(panel.tree_model.index_of_path("layer2.0.conv2"))
    panel.tree.verticalScrollBar().setValue(4)  # scrolled down by a few rows
    top = panel.tree_model.path_of(panel.tree.indexAt(QPoint(1, 1)))
    assert top == "maxpool"

    panel.set_checklist(resnet_checklist("mlp"))  # a new model: fc is now a Sequential
    tree, model = panel.tree, panel.tree_model
    assert all(tree.isExpanded(model.index_of_path(p)) for p in OPENED)
    assert not tree.isExpanded(model.index_of_path("layer1")) and not tree.isExpanded(model.index_of_path("fc"))
    assert model.path_of(tree.currentIndex()) == "layer2.0.conv2"
    assert model.path_of(tree.indexAt(QPoint(1, 1))) == top


def test_a_closed_row_stays_closed_and_new_rows_open_as_in_a_new_tree(qtbot):
    panel = FreezePanel()
    qtbot.addWidget(panel)
    panel.set_checklist(resnet_checklist())
    root = panel.tree_model.index_of_path("")
    assert panel.tree.isExpanded(root)  # a new tree opens down to the blocks
    panel.tree.collapse(root)
    panel.set_checklist(resnet_checklist("cosine"))
    assert not panel.tree.isExpanded(panel.tree_model.index_of_path(""))
    panel.set_checklist(resnet_checklist(arch="vit_b_16"))  # other layers: its blocks' parents are new rows
    tree, model = panel.tree, panel.tree_model
    assert tree.isExpanded(model.index_of_path("encoder")) and tree.isExpanded(model.index_of_path("encoder.layers"))
    assert not tree.isExpanded(model.index_of_path(""))  # the one row both had stays as the person left it
    panel.set_checklist(None)  # another project: nothing to keep
    panel.set_checklist(resnet_checklist())
    assert panel.tree.isExpanded(panel.tree_model.index_of_path(""))


def test_changing_the_head_in_the_window_keeps_the_open_rows(window, qtbot, project_factory):
    window.set_project(project_factory(model__arch="resnet18"))
    tree = window.freeze_panel.tree
    for path in OPENED:
        tree.expand(tree.model().index_of_path(path))
    before = tree.model().checklist
    kind = window.head_panel.kind
    kind.setCurrentIndex(kind.findData("mlp"))
    kind.activated.emit(kind.currentIndex())  # as a person picks it
    assert window.project.head.kind == "mlp" and tree.model().checklist is not before  # the tree was rebuilt
    assert tree.model().has_path("fc.0")
    assert all(tree.isExpanded(tree.model().index_of_path(p)) for p in OPENED)
    qtbot.waitUntil(lambda: window.data_panel.sources is not None, timeout=30_000)  # the scan's rebuild too
    assert all(tree.isExpanded(tree.model().index_of_path(p)) for p in OPENED)
