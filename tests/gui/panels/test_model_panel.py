"""The model panel lists every architecture, filters as the person types, and edits ``[model]``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt
from safetensors.torch import save_file

from engine.model import zoo
from engine.model.digits_cnn import DigitsCNN
from engine.project import Project
from gui.panels.fields import is_marked
from gui.panels.model_panel import ModelPanel
from tests.gui.panels.util import check, show_panel


@pytest.fixture
def cached_resnet18():
    """resnet18's pretrained file present in the test's own torch hub cache (only its presence is read)."""
    ck = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    ck.mkdir(parents=True, exist_ok=True)
    (ck / zoo.arch_info("resnet18").weights_file).write_bytes(b"present")


@pytest.fixture
def panel(qtbot, cached_resnet18):
    return show_panel(qtbot, ModelPanel())


def row_text(p, name, column):
    for r in range(p.proxy.rowCount()):
        if p.proxy.index(r, 0).data() == name:
            return p.proxy.index(r, column).data()
    raise AssertionError(f"{name} not listed")


def test_lists_every_architecture_with_its_facts(panel):
    p, project = panel
    assert sorted(p.visible_names()) == sorted(zoo.list_architectures())
    assert zoo.DEMO_ARCH in p.visible_names() and len(p.visible_names()) > 80
    assert row_text(p, "resnet18", 1) == "11.7 M"
    assert row_text(p, "resnet18", 2) == "69.8"
    assert row_text(p, "resnet18", 3) == "✓"        # its file is in this test's cache
    assert row_text(p, "resnet50", 3) == "—"
    assert p.view.currentIndex().data() == "resnet18"
    assert "11.7 M parameters" in p.details.text() and "on this machine" in p.details.text()
    assert p.problems() == []


def test_search_filters(qtbot, panel):
    p, project = panel
    qtbot.keyClicks(p.search, "VIT_B")
    assert p.visible_names() == ["vit_b_16", "vit_b_32"]
    p.search.clear()
    qtbot.keyClicks(p.search, "efficientnet")   # matches names and the family
    assert p.visible_names() and all("efficientnet" in n for n in p.visible_names())
    p.search.clear()
    qtbot.keyClicks(p.search, "no such net")
    assert p.visible_names() == []
    assert project.model.arch == "resnet18"  # filtering alone changes nothing


def test_picking_an_architecture_updates_project_and_its_weights_are_checked(qtbot, panel):
    p, project = panel
    qtbot.keyClicks(p.search, "thaw_digits")
    with qtbot.waitSignal(p.changed, timeout=1000):
        qtbot.keyClick(p.search, Qt.Key.Key_Return)
    assert project.model.arch == zoo.DEMO_ARCH
    check(p)
    assert p.problems() == []  # the demo's weights ship with Thaw

    p.search.clear()
    qtbot.keyClicks(p.search, "resnet50")
    with qtbot.waitSignal(p.changed, timeout=1000):
        qtbot.keyClick(p.search, Qt.Key.Key_Return)
    assert project.model.arch == "resnet50"
    check(p)
    assert is_marked(p.weights_box)
    assert any("not on this machine" in problem for problem in p.problems())
    with qtbot.waitSignal(p.changed, timeout=1000):
        qtbot.mouseClick(p.none, Qt.MouseButton.LeftButton)
    check(p)
    assert project.model.weights == "none" and p.problems() == [] and not is_marked(p.weights_box)


def test_a_weights_file_is_checked_against_the_architecture(qtbot, panel, tmp_path):
    """The engine reads the file's header: another architecture's file is marked before anything runs."""
    p, project = panel
    project.model.arch = zoo.DEMO_ARCH
    qtbot.mouseClick(p.from_file, Qt.MouseButton.LeftButton)
    assert p.weights_file.isEnabled() and "choose \"pretrained\", \"none\" or a weights file" in p.weights_box.toolTip()
    assert p.typed_problems()  # the project keeps its weights until a file is named
    qtbot.keyClicks(p.weights_file, str(tmp_path / "model.bin"))
    assert project.model.weights == str(tmp_path / "model.bin")  # held as typed, and marked
    check(p)
    assert is_marked(p.weights_box) and "a .safetensors, .pth or .pt file" in p.weights_box.toolTip()
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    p.weights_file.clear()
    qtbot.keyClicks(p.weights_file, str(other))
    check(p)
    assert is_marked(p.weights_box) and "does not fit this architecture" in p.weights_box.toolTip()
    good = tmp_path / "digits.safetensors"
    save_file(DigitsCNN(num_classes=7).state_dict(), str(good))  # another head is fine: it is replaced
    p.weights_file.clear()
    qtbot.keyClicks(p.weights_file, str(good))
    check(p)
    assert project.model.weights == str(good)
    assert p.from_file.isChecked() and p.problems() == [] and not is_marked(p.weights_box)


def test_unknown_architecture_in_a_project_is_marked(qtbot, cached_resnet18):
    p = ModelPanel()
    qtbot.addWidget(p)
    project = Project()
    project.model.arch = "resnet9000"
    p.set_project(project)
    check(p)
    assert is_marked(p.view) and "unknown architecture" in p.problems()[0]


def test_read_only(panel):
    p, _ = panel
    p.set_read_only(True)
    assert not p.view.isEnabled() and not p.search.isEnabled() and not p.pretrained.isEnabled()
    p.set_read_only(False)
    assert p.view.isEnabled() and p.pretrained.isEnabled() and not p.weights_file.isEnabled()


def test_sizes_read_naturally():
    from gui.panels.model_panel import format_size

    assert format_size(105_000) == "105 kB"
    assert format_size(2_500_000) == "2.5 MB"
    assert format_size(97_800_000) == "98 MB"
    assert format_size(None) == "size unknown"
