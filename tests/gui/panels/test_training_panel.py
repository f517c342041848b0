"""The training panel edits ``[train]`` of the open project, rejecting bad values as they are typed."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.device import available_devices
from engine.project import Project
from gui.panels.fields import is_marked
from gui.panels.training_panel import TrainingPanel
from tests.gui.panels.util import check, show_panel, type_into


@pytest.fixture
def panel(qtbot):
    return show_panel(qtbot, TrainingPanel())


def test_loads_project_values(panel):
    p, project = panel
    assert p.epochs.text() == "10"
    assert p.lr.text() == "0.001"
    assert p.optimizer.currentData() == "adamw"
    assert p.amp.isChecked() is True
    assert p.problems() == []


def test_valid_value_updates_project_and_emits_changed(qtbot, panel):
    p, project = panel
    with qtbot.waitSignal(p.changed, timeout=1000):
        type_into(qtbot, p.lr, "3e-4")
    assert project.train.lr == pytest.approx(3e-4)
    assert not is_marked(p.lr)


@pytest.mark.parametrize(
    ("field", "text", "reason", "good", "value"),
    [("lr", "fast", "not a number", "0.01", 0.01), ("lr", "-1", "> 0.0", "1e-2", 0.01),
     ("epochs", "0", ">= 1", "5", 5), ("epochs", ".5", "whole number", "7", 7),
     ("label_smoothing", "1", "< 1.0", "0.1", 0.1), ("seed", "-3", ">= 0", "42", 42)],
)
def test_invalid_value_is_marked_and_kept_out(qtbot, panel, field, text, reason, good, value):
    p, project = panel
    before = project.get(f"train.{field}")
    edit = getattr(p, field)
    type_into(qtbot, edit, text)
    assert project.get(f"train.{field}") == before
    assert is_marked(edit)
    assert reason in edit.toolTip()
    assert any(reason in problem and f"train.{field}" in problem for problem in p.problems())
    with qtbot.assertNotEmitted(p.changed):
        qtbot.keyClicks(edit, "x")
    assert project.get(f"train.{field}") == before
    type_into(qtbot, edit, good)
    assert project.get(f"train.{field}") == pytest.approx(value)
    assert not is_marked(edit)
    assert p.problems() == []


def test_combo_and_checkbox_edit_project(qtbot, panel):
    p, project = panel
    with qtbot.waitSignal(p.changed, timeout=1000):
        p.scheduler.setCurrentIndex(p.scheduler.findData("onecycle"))
        p.scheduler.activated.emit(p.scheduler.currentIndex())
    assert project.train.scheduler == "onecycle"
    with qtbot.waitSignal(p.changed, timeout=1000):
        qtbot.mouseClick(p.class_weights, Qt.MouseButton.LeftButton)
    assert project.train.class_weights is True


def test_unavailable_device_disabled_and_marked(qtbot):
    devices = available_devices()
    missing = [k for k, text in devices.items() if text is None]
    p = TrainingPanel()
    qtbot.addWidget(p)
    for key in missing:
        item = p.device.model().item(p.device.findData(key))
        assert not item.isEnabled()
        project = Project()
        project.train.device = key  # e.g. a project written on a machine with a GPU
        p.set_project(project)
        check(p)
        assert is_marked(p.device)
        assert any("not available" in problem for problem in p.problems())
    project = Project()
    p.set_project(project)
    check(p)
    assert p.problems() == []
    assert devices["auto"].startswith("Auto (")


def test_read_only_disables_every_input(panel):
    p, _ = panel
    p.set_read_only(True)
    assert not p.lr.isEnabled() and p.lr.isReadOnly()
    assert not p.device.isEnabled() and not p.browse_out.isEnabled() and not p.amp.isEnabled()
    p.set_read_only(False)
    assert p.lr.isEnabled() and not p.lr.isReadOnly()
