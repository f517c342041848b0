"""The head panel edits ``[head]`` and shows the resulting head as one line."""

from __future__ import annotations

import pytest

from gui.panels.fields import is_marked
from gui.panels.head_panel import HeadPanel
from tests.gui.panels.util import show_panel, type_into


@pytest.fixture
def panel(qtbot):
    return show_panel(qtbot, HeadPanel())


def choose(combo, value):
    combo.setCurrentIndex(combo.findData(value))
    combo.activated.emit(combo.currentIndex())


def test_description_follows_sizes_and_classes(qtbot, panel):
    p, project = panel
    assert p.description.text() == "? -> ?"
    p.set_in_features(512)
    p.set_num_classes(5)
    assert p.description.text() == "512 -> 5"
    assert "5" in p.classes.text()
    assert not p.hidden.isVisible() and not p.dropout.isVisible()  # a linear head has neither

    with qtbot.waitSignal(p.changed, timeout=1000):
        choose(p.kind, "mlp")
    assert project.head.kind == "mlp"
    assert p.hidden.isVisible()
    type_into(qtbot, p.hidden, "256, 128")
    assert project.head.hidden == [256, 128]
    assert p.description.text() == "512 -> 256 -> ReLU -> Dropout 0.2 -> 128 -> ReLU -> Dropout 0.2 -> 5"
    type_into(qtbot, p.dropout, "0")
    assert p.description.text() == "512 -> 256 -> ReLU -> 128 -> ReLU -> 5"

    with qtbot.waitSignal(p.changed, timeout=1000):
        choose(p.kind, "cosine")
    assert project.head.kind == "cosine"
    assert not p.hidden.isVisible() and not p.dropout.isVisible()
    assert p.description.text() == "512 -> cosine similarity x learned scale -> 5"

    choose(p.kind, "keep")
    assert project.head.kind == "keep"
    assert not p.hidden.isVisible() and not p.dropout.isVisible()
    assert "the source's own classifier" in p.description.text() and "5 classes" in p.description.text()
    assert "source's own head" in p.note.text()


@pytest.mark.parametrize(("text", "reason"), [("x, 256", "not a whole number"), ("0", ">= 1"), ("", "enter one")])
def test_bad_hidden_sizes_are_marked_and_kept_out(qtbot, panel, text, reason):
    p, project = panel
    choose(p.kind, "mlp")
    type_into(qtbot, p.hidden, "64")
    p.set_in_features(10)
    p.set_num_classes(3)
    with qtbot.assertNotEmitted(p.changed):
        type_into(qtbot, p.hidden, text)
    assert project.head.hidden == [64]
    assert is_marked(p.hidden) and reason in p.hidden.toolTip()
    assert p.problems() and p.problems()[0].startswith("head.hidden")
    assert p.description.text().startswith("10 -> 64 ->")  # still the project's head


def test_bad_dropout_is_marked(qtbot, panel):
    p, project = panel
    choose(p.kind, "mlp")
    type_into(qtbot, p.dropout, "1.5")
    assert project.head.dropout == 0.2
    assert is_marked(p.dropout) and "< 1.0" in p.dropout.toolTip()
    type_into(qtbot, p.dropout, "0.5")
    assert project.head.dropout == 0.5 and not is_marked(p.dropout) and p.problems() == []


def test_read_only(panel):
    p, _ = panel
    p.set_read_only(True)
    assert not p.kind.isEnabled() and p.dropout.isReadOnly()


def test_the_head_parameter_count_is_unknown_until_it_is_given(panel):
    p, _ = panel
    assert p.params.text() == "?" and "number of classes" in p.params.toolTip()
    p.set_head_params(2565)  # the window's, from the checklist's head rows
    assert p.params.text() == "2,565" and p.params.toolTip() == ""
    p.set_head_params(None)
    assert p.params.text() == "?"
