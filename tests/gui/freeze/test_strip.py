import pytest
from PySide6.QtCore import QPoint, Qt

from gui.freeze.strip import (
    FROZEN,
    FROZEN_COLOUR,
    HEAD,
    HEAD_COLOUR,
    TRAINABLE,
    TRAINABLE_COLOUR,
    FreezeStrip,
    Segment,
)


@pytest.fixture
def strip(qtbot):
    s = FreezeStrip()
    qtbot.addWidget(s)
    s.resize(40, 216)  # a 184 px bar between the "input" and "head" labels
    s.set_segments([Segment("a", 3.0, FROZEN), Segment("b", 1.0, TRAINABLE), Segment("fc", 4.0, HEAD)])
    return s


def test_segments_are_sized_by_weight_from_input_to_head(strip):
    top, h = strip.LABEL_H, strip.height() - 2 * strip.LABEL_H
    assert strip.segment_at(top + 0.10 * h).path == "a"
    assert strip.segment_at(top + 0.40 * h).path == "b"  # 3/8 .. 4/8
    assert strip.segment_at(top + 0.60 * h).path == "fc"
    assert strip.segment_at(top - 5) is None


def test_paints_frozen_and_trainable_in_two_colours(strip):
    image = strip.grab().toImage()
    top, h, x = strip.LABEL_H, strip.height() - 2 * strip.LABEL_H, strip.width() // 2
    assert image.pixelColor(x, int(top + 0.2 * h)) == FROZEN_COLOUR
    assert image.pixelColor(x, int(top + 0.43 * h)) == TRAINABLE_COLOUR
    assert image.pixelColor(x, int(top + 0.8 * h)) == HEAD_COLOUR


def test_click_names_the_module(strip, qtbot):
    strip.show()
    qtbot.waitExposed(strip)
    y = int(strip.LABEL_H + 0.43 * (strip.height() - 2 * strip.LABEL_H))
    with qtbot.waitSignal(strip.module_clicked) as blocker:
        qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(20, y))
    assert blocker.args == ["b"]


def test_mode_switch_announces_and_rejects_unknown(strip, qtbot):
    with qtbot.waitSignal(strip.mode_changed) as blocker:
        strip.set_mode("params")
    assert blocker.args == ["params"] and strip.mode() == "params"
    with pytest.raises(ValueError, match="blocks"):
        strip.set_mode("depth")


def test_a_tiny_head_stays_visible_beside_a_huge_backbone(qtbot):
    strip = FreezeStrip()
    qtbot.addWidget(strip)
    strip.resize(40, 216)
    strip.set_segments([Segment("features", 4_000_000.0, FROZEN), Segment("classifier.1", 6_405.0, HEAD)])
    bottom = strip.height() - strip.LABEL_H - 2  # just above the bar's lower edge
    assert strip.segment_at(bottom).path == "classifier.1"
    assert strip.grab().toImage().pixelColor(strip.width() // 2, bottom) == HEAD_COLOUR
