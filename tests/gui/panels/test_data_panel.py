"""The data panel scans a real image folder off the GUI thread and shows its classes, split and skipped files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from engine.project import Project
from gui import threads
from gui.panels.data_panel import DataPanel
from gui.panels.fields import is_marked
from tests.gui.panels.util import type_into


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
    with qtbot.waitSignal(panel.classes_changed, timeout=30000) as classes:
        panel.set_project(project)
    assert classes.args == [["cat", "dog", "owl"]]
    assert panel.bars.counts == {"cat": 6, "dog": 4, "owl": 5}
    assert "3 classes, 15 images" in panel.summary.text()
    assert "12 train, 3 validation" in panel.split_label.text()  # 20% of each class, at least one
    assert len(panel.thumbs.labels) == 9 and not panel.thumbs.labels[0].pixmap().isNull()
    assert panel.skipped.isVisible() and panel.skipped.list.count() == 1
    assert panel.skipped.list.item(0).text().startswith("broken.jpg")
    assert str(root / "cat" / "broken.jpg") == panel.skipped.list.item(0).toolTip()
    assert panel.problems() == []


def test_typed_folder_is_scanned_and_missing_folder_rejected(qtbot, panel, tmp_path):
    write_folder(tmp_path / "imgs", {"cat": 3, "dog": 3}, corrupt=False)
    project = Project(base_dir=tmp_path)
    panel.set_project(project)
    type_into(qtbot, panel.train, str(tmp_path / "nowhere"))
    assert "nowhere" not in project.data.train  # the project keeps only a path that exists
    assert is_marked(panel.train) and "is not a folder" in panel.train.toolTip()
    type_into(qtbot, panel.train, str(tmp_path / "imgs"))
    assert panel._threads == []  # nothing is scanned while a path is being typed
    with qtbot.waitSignal(panel.classes_changed, timeout=30000) as classes:
        qtbot.keyClick(panel.train, Qt.Key.Key_Return)
    assert project.data.train == str(tmp_path / "imgs")
    assert classes.args == [["cat", "dog"]]
    assert not is_marked(panel.train) and not panel.skipped.isVisible()


def test_unusable_folder_is_marked_with_the_engine_reason(qtbot, panel, tmp_path):
    write_folder(tmp_path / "one", {"cat": 3}, corrupt=False)
    project = Project(base_dir=tmp_path)
    project.data.train = "one"
    with qtbot.waitSignal(panel.scan_finished, timeout=30000):
        panel.set_project(project)
    assert is_marked(panel.train) and "only one class" in panel.train.toolTip()
    assert any("only one class" in p for p in panel.problems())
    assert panel.classes == []


def test_split_problem_and_validation_folder(qtbot, panel, tmp_path):
    write_folder(tmp_path / "imgs", {"cat": 2, "dog": 5}, corrupt=False)
    write_folder(tmp_path / "val", {"cat": 1, "dog": 2}, corrupt=False)
    project = Project(base_dir=tmp_path)
    project.data.train = "imgs"
    with qtbot.waitSignal(panel.scan_finished, timeout=30000):
        panel.set_project(project)
    with qtbot.assertNotEmitted(panel.changed):
        type_into(qtbot, panel.val_fraction, "0.9")  # leaves no training image of 'cat'
    assert project.data.val_fraction == 0.2
    assert is_marked(panel.val_fraction) and "'cat'" in panel.val_fraction.toolTip()
    type_into(qtbot, panel.val, "val")
    with qtbot.waitSignal(panel.scan_finished, timeout=30000):
        qtbot.keyClick(panel.val, Qt.Key.Key_Return)
    assert project.data.val == "val"
    assert not panel.val_fraction.isEnabled()
    assert "7 train, 3 validation" in panel.split_label.text()
    assert panel.problems() == []  # the share is not used with a validation folder


def test_close_joins_scan_thread(qtbot, tmp_path):
    write_folder(tmp_path / "imgs", {"cat": 20, "dog": 20}, corrupt=False)
    p = DataPanel()
    project = Project(base_dir=tmp_path)
    project.data.train = "imgs"
    p.set_project(project)
    assert p._threads, "a scan thread was started"
    p.close()
    assert threads.running() == []
    p.deleteLater()


def test_image_size_note_for_architectures_that_need_another_size(qtbot, panel, tmp_path):
    project = Project(base_dir=tmp_path)
    project.model.arch = "vit_b_16"
    panel.set_project(project)
    type_into(qtbot, panel.image_size, "128")
    assert project.data.image_size == 128
    assert not panel.size_note.isHidden() and "224" in panel.size_note.text()
    panel.set_arch("resnet18")
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
