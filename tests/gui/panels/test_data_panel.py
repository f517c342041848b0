"""The data panel scans a real image folder off the GUI thread and shows its classes, split and skipped files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from engine.project import Project
from gui import tasks
from gui.panels.data_panel import DataPanel
from gui.panels.data_view import load_thumbnail
from gui.panels.fields import is_marked
from tests.gui.panels.util import check, type_into
from tests.imagekinds import NAMES, H, W, write_kinds


def write_folder(root, counts, corrupt=True):
    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    if corrupt:
        (root / "cat" / "broken.jpg").write_bytes(b"this is not a jpeg")
    return root


@pytest.fixture
def panel(qtbot):
    p = DataPanel()
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_scan_shows_classes_counts_split_thumbnails_and_skipped(qtbot, panel, tmp_path):
    root = write_folder(tmp_path / "imgs", {"cat": 6, "dog": 4, "owl": 5})
    project = Project(base_dir=tmp_path)
    project.data.train = "imgs"
    with qtbot.waitSignal(panel.scanned, timeout=30000) as scanned:
        panel.set_project(project)
    assert scanned.args[0] is panel.sources and panel.sources.classes == ["cat", "dog", "owl"]
    assert panel.bars.counts == {"cat": 6, "dog": 4, "owl": 5}
    assert "3 classes, 15 images" in panel.summary.text()
    assert "12 train, 3 validation" in panel.split_label.text()  # 20% of each class, at least one
    assert len(panel.thumbs.labels) == 9 and not panel.thumbs.labels[0].pixmap().isNull()
    assert panel.skipped.isVisible() and panel.skipped.list.count() == 1
    assert panel.skipped.list.item(0).text().startswith("broken.jpg")
    assert str(root / "cat" / "broken.jpg") == panel.skipped.list.item(0).toolTip()
    check(panel, panel.sources)
    assert panel.problems() == []


def test_typed_folder_is_kept_as_typed_marked_and_scanned_when_done(qtbot, panel, tmp_path):
    write_folder(tmp_path / "imgs", {"cat": 3, "dog": 3}, corrupt=False)
    project = Project(base_dir=tmp_path)
    panel.set_project(project)
    type_into(qtbot, panel.train, str(tmp_path / "nowhere"))
    assert project.data.train == str(tmp_path / "nowhere")  # the project holds what the field shows
    check(panel)
    assert is_marked(panel.train) and "is not a folder" in panel.train.toolTip()
    type_into(qtbot, panel.train, str(tmp_path / "imgs"))
    assert not panel.is_scanning() and panel.sources is None  # nothing is scanned while a path is being typed
    with qtbot.waitSignal(panel.scanned, timeout=30000):
        qtbot.keyClick(panel.train, Qt.Key.Key_Return)
    assert project.data.train == str(tmp_path / "imgs") and panel.sources.classes == ["cat", "dog"]
    check(panel, panel.sources)
    assert not is_marked(panel.train) and not panel.skipped.isVisible()
    type_into(qtbot, panel.train, str(tmp_path / "img"))
    assert panel.sources is None  # the scan on screen is of another path now


def test_unusable_folder_is_marked_with_the_engine_reason(qtbot, panel, tmp_path):
    write_folder(tmp_path / "one", {"cat": 3}, corrupt=False)
    project = Project(base_dir=tmp_path)
    project.data.train = "one"
    with qtbot.waitSignal(panel.scanned, timeout=30000):
        panel.set_project(project)
    assert panel.sources.classes == [] and "only one class" in panel.sources.train_error
    assert "only one class" in panel.summary.text()  # the reason is in the box, not only in a tooltip
    check(panel, panel.sources)
    assert is_marked(panel.train) and "only one class" in panel.train.toolTip()
    assert any("only one class" in p for p in panel.problems())


def test_split_problem_and_validation_folder(qtbot, panel, tmp_path):
    write_folder(tmp_path / "imgs", {"cat": 2, "dog": 5}, corrupt=False)
    write_folder(tmp_path / "val", {"cat": 1, "dog": 2}, corrupt=False)
    project = Project(base_dir=tmp_path)
    project.data.train = "imgs"
    with qtbot.waitSignal(panel.scanned, timeout=30000):
        panel.set_project(project)
    with qtbot.waitSignal(panel.changed):
        type_into(qtbot, panel.val_fraction, "0.9")  # a share the project takes, but it leaves 'cat' no image
    assert project.data.val_fraction == 0.9
    check(panel, panel.sources)
    assert is_marked(panel.val_fraction) and "'cat'" in panel.val_fraction.toolTip()
    assert "not possible" in panel.split_label.text()
    type_into(qtbot, panel.val, "val")
    with qtbot.waitSignal(panel.scanned, timeout=30000):
        qtbot.keyClick(panel.val, Qt.Key.Key_Return)
    assert project.data.val == "val"
    assert not panel.val_fraction.isEnabled()
    assert "7 train, 3 validation" in panel.split_label.text()
    check(panel, panel.sources)
    assert panel.problems() == []  # the share is not used with a validation folder


def test_a_test_share_and_a_test_folder_show_in_the_split(qtbot, panel, tmp_path):
    """The test split as the engine will make it: a share of each class, or a folder (and then no share)."""
    write_folder(tmp_path / "imgs", {"cat": 10, "dog": 10}, corrupt=False)
    write_folder(tmp_path / "held", {"cat": 2, "dog": 3}, corrupt=False)
    project = Project(base_dir=tmp_path)
    project.data.train = "imgs"
    with qtbot.waitSignal(panel.scanned, timeout=30000):
        panel.set_project(project)
    assert "test" not in panel.split_label.text()
    with qtbot.waitSignal(panel.changed):
        type_into(qtbot, panel.test_fraction, "0.3")
    assert project.data.test_fraction == 0.3
    assert "10 train, 4 validation" in panel.split_label.text() and "6 test (30% of each class" in panel.split_label.text()
    type_into(qtbot, panel.test, "held")
    with qtbot.waitSignal(panel.scanned, timeout=30000):
        qtbot.keyClick(panel.test, Qt.Key.Key_Return)
    assert project.data.test == "held" and not panel.test_fraction.isEnabled()
    assert "16 train, 4 validation" in panel.split_label.text() and "5 test (the test source" in panel.split_label.text()
    check(panel, panel.sources)
    assert panel.problems() == []


def test_close_joins_scan_thread(qtbot, tmp_path):
    write_folder(tmp_path / "imgs", {"cat": 20, "dog": 20}, corrupt=False)
    p = DataPanel()
    project = Project(base_dir=tmp_path)
    project.data.train = "imgs"
    p.set_project(project)
    assert p.is_scanning(), "a scan was started"
    p.close()
    assert tasks.running() == []
    p.deleteLater()


def test_image_size_the_architecture_forces_is_a_note_under_the_field(qtbot, panel, tmp_path):
    project = Project(base_dir=tmp_path)
    project.model.arch = "vit_b_16"
    panel.set_project(project)
    type_into(qtbot, panel.image_size, "128")
    assert project.data.image_size == 128
    check(panel)
    assert not panel.size_note.isHidden() and "224" in panel.size_note.text()
    assert not is_marked(panel.image_size)  # a warning: it does not stop a run
    assert not any(p.startswith("data.image_size") for p in panel.problems())
    project.model.arch = "resnet18"
    check(panel)
    assert panel.size_note.isHidden()


def test_read_only_keeps_the_view_but_locks_inputs(qtbot, panel, tmp_path):
    project = Project(base_dir=tmp_path)
    project.data.val = "somewhere"
    panel.set_project(project)
    panel.set_read_only(True)
    assert panel.train.isReadOnly() and not panel.browse_train.isEnabled() and not panel.augment.isEnabled()
    assert panel.skipped.toggle.isEnabled()  # the list of skipped files can still be opened
    panel.set_read_only(False)
    assert panel.train.isEnabled() and not panel.val_fraction.isEnabled()  # unused with a validation folder


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    return {k.name: k for k in write_kinds(tmp_path_factory.mktemp("kinds"))}


@pytest.mark.parametrize("name", NAMES)
def test_a_thumbnail_shows_what_the_model_sees(qapp, kinds, name):
    """The data panel decodes thumbnails through the engine (upright, wide pixels scaled, transparency on
    white): Qt's own reader showed transparent pixels and could differ from what is trained on."""
    kind = kinds[name]
    image = load_thumbnail(str(kind.path), size=max(W, H))  # no shrinking: the pixels compare one to one
    assert (image.width(), image.height()) == (W, H)
    pixels = np.array([[image.pixelColor(x, y).getRgb()[:3] for x in range(W)] for y in range(H)], np.int16)
    assert np.abs(pixels - kind.shown).max() <= kind.tolerance

