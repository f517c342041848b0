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
    qtbot.keyClicks(p.weights_file, str(tmp_path / "model.txt"))
    assert project.model.weights == str(tmp_path / "model.txt")  # held as typed, and marked
    check(p)
    assert is_marked(p.weights_box) and "or a weights file (safetensors or PyTorch" in p.weights_box.toolTip()
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


def test_download_shows_progress_and_the_row_turns_local(qtbot, panel, weights_server, monkeypatch):
    """Download, only when clicked: progress with speed and time left, then the file is here and the row and the
    details say so (from a real local server, torchvision's URL injected)."""
    from tests.published import serve_published

    p, project = panel
    base, served = weights_server
    name = serve_published(monkeypatch, "squeezenet1_1", base, served)
    project.model.arch = "squeezenet1_1"
    p.set_project(project)
    assert p.fetcher.download_button.isVisible() and p.fetcher.download_button.text() == "Download (5.0 MB)"
    assert "fetch-weights squeezenet1_1" in p.details.text()
    seen = []
    p.fetcher.progress.valueChanged.connect(lambda _v: seen.append(p.fetcher.progress.format()))
    with qtbot.waitSignal(p.weights_arrived, timeout=20000) as arrived:
        qtbot.mouseClick(p.fetcher.download_button, Qt.MouseButton.LeftButton)
        assert p.fetcher.progress.isVisible() and p.fetcher.cancel_button.isVisible()
        assert not p.fetcher.download_button.isEnabled()
    qtbot.waitUntil(lambda: not p.fetcher.is_busy(), timeout=5000)
    assert arrived.args == ["squeezenet1_1"] and (zoo.checkpoints_dir() / name).is_file()
    assert any("MB/s" in text and "left" in text for text in seen)
    assert row_text(p, "squeezenet1_1", 3) == "✓" and "on this machine" in p.details.text()
    assert not p.fetcher.download_button.isVisible() and not p.fetcher.progress.isVisible()
    assert "squeezenet1_1's pretrained weights are on this machine" in p.fetcher.status.text()


def test_a_cancelled_download_keeps_nothing(qtbot, panel, weights_server, monkeypatch):
    from tests.published import serve_published

    p, project = panel
    base, served = weights_server
    serve_published(monkeypatch, "squeezenet1_1", base, served)
    project.model.arch = "squeezenet1_1"
    p.set_project(project)
    qtbot.mouseClick(p.fetcher.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: p.fetcher.progress.value() > 0, timeout=10000)
    qtbot.mouseClick(p.fetcher.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not p.fetcher.is_busy(), timeout=10000)
    assert "cancelled; nothing was kept" in p.fetcher.status.text()
    assert [f.name for f in zoo.checkpoints_dir().iterdir()] == ["resnet18-f37072fd.pth"]  # the fixture's alone
    assert row_text(p, "squeezenet1_1", 3) == "—"


def test_an_import_with_a_wrong_hash_is_refused(qtbot, panel, tmp_path):
    from tests.published import weights_file

    p, _ = panel
    path, _digest = weights_file(tmp_path, name="resnet50-0676ba61.pth")  # torchvision's name, another file
    p.fetcher.start_import(str(path))
    qtbot.waitUntil(lambda: not p.fetcher.is_busy(), timeout=10000)
    assert "is no torchvision architecture's pretrained file" in p.fetcher.status.text()
    assert row_text(p, "resnet50", 3) == "—"
    assert [f.name for f in zoo.checkpoints_dir().iterdir()] == ["resnet18-f37072fd.pth"]


def test_timm_models_join_the_list_when_asked(qtbot, panel):
    p, project = panel
    assert p.show_timm.isEnabled() and not any(n.startswith("timm:") for n in p.visible_names())
    p.show_timm.setChecked(True)
    qtbot.waitUntil(lambda: len(p.visible_names()) > 1000, timeout=60000)
    qtbot.keyClicks(p.search, "timm:test_resnet")
    assert p.visible_names() == ["timm:test_resnet.r160_in1k"]
    assert row_text(p, "timm:test_resnet.r160_in1k", 1) == "470 k"
    with qtbot.waitSignal(p.changed, timeout=1000):
        qtbot.keyClick(p.search, Qt.Key.Key_Return)
    assert project.model.arch == "timm:test_resnet.r160_in1k" and "resnet (timm)" in p.details.text()
    assert "Hugging Face cache" in p.details.text() and not p.fetcher.download_button.isVisible()
    p.search.clear()
    p.show_timm.setChecked(False)
    assert not any(n.startswith("timm:") for n in p.visible_names()) and len(p.visible_names()) == 81
