"""The freeze timeline: it paints what `Schedule.plan_at` says (frozen grey, trainable shaded by rate), its stage
boundaries drag (and arrow-key) to another epoch within their range, a lane click names the block, the "now" line."""

import pytest
from PySide6.QtCore import QPoint, Qt

from engine.model.checklist import Checklist
from engine.model.digits_cnn import DigitsCNN
from engine.model.schedule import Schedule, preset, start_range
from engine.project import Project
from gui.freeze.timeline import FROZEN_COLOUR, NOW_COLOUR, Boundary, Timeline, rate_colour


def gradual(epochs=6):
    c = Checklist(DigitsCNN(3), ["fc"])
    p = Project()
    p.set("train.epochs", epochs)
    p.set("train.lr", 0.01)
    for key, value in preset("gradual", c, epochs).items():
        p.set(f"freeze.{key}", value)
    stages = p.freeze.stages
    boundaries = [Boundary(i, s["start"], *start_range(stages, i, epochs)) for i, s in enumerate(stages) if s["start"]]
    return Schedule.of_project(c, p), boundaries


@pytest.fixture
def timeline(qtbot):
    t = Timeline()
    qtbot.addWidget(t)
    t.resize(84 + 8 + 600, 12 + 16 + 100)  # 100 px per epoch, 20 px per lane
    schedule, boundaries = gradual()
    t.set_schedule(schedule, 6, boundaries)
    t.show()
    qtbot.waitExposed(t)
    return t


def cell(t, epoch, lane):
    """The middle of a lane's cell in a 0-based epoch."""
    g = t.grid()
    return QPoint(int(t.x_of(epoch + 0.5)), int(g.top() + (lane + 0.5) * g.height() / len(t.lanes())))


def test_it_paints_what_plan_at_says(timeline):
    image = timeline.grab().toImage()
    schedule = timeline.schedule
    for epoch in range(6):
        plan = schedule.plan_at(epoch)
        for lane, rate in enumerate(plan.rates):
            want = FROZEN_COLOUR if rate is None else rate_colour(rate, timeline.fastest)
            got = image.pixelColor(cell(timeline, epoch, lane) + QPoint(12, 0))  # beside a boundary's dashes
            assert got == want, (epoch, lane)
    assert rate_colour(0.01, 0.01) != rate_colour(0.01 / 2.6, 0.01) != FROZEN_COLOUR  # darker is faster
    assert timeline.lanes() == ("stem", "block1", "block2", "block3", "head")


def test_a_boundary_drags_to_another_epoch_within_its_range(timeline, qtbot):
    assert [(b.start, b.low, b.high) for b in timeline.boundaries] == [(1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 5)]
    x = int(timeline.x_of(4))
    with qtbot.waitSignal(timeline.boundary_moved) as moved:
        qtbot.mousePress(timeline, Qt.MouseButton.LeftButton, pos=QPoint(x, 4))
        qtbot.mouseMove(timeline, QPoint(int(timeline.x_of(5.2)), 4))
        qtbot.mouseMove(timeline, QPoint(int(timeline.x_of(5.9)), 4))  # past its range: held at 5
        qtbot.mouseRelease(timeline, Qt.MouseButton.LeftButton, pos=QPoint(int(timeline.x_of(5.9)), 4))
    assert moved.args == [4, 5]  # stages[4] (stages[0] is the first stage's rates) now starts after epoch 5
    with qtbot.assertNotEmitted(timeline.boundary_moved):  # back where it was: nothing to say
        qtbot.mousePress(timeline, Qt.MouseButton.LeftButton, pos=QPoint(x, 4))
        qtbot.mouseRelease(timeline, Qt.MouseButton.LeftButton, pos=QPoint(x, 4))
    with qtbot.waitSignal(timeline.boundary_moved) as moved:
        qtbot.keyClick(timeline, Qt.Key.Key_Right)  # the boundary clicked last
    assert moved.args == [4, 5]


def test_read_only_it_only_shows(timeline, qtbot):
    timeline.set_editable(False)
    x = int(timeline.x_of(4))
    with qtbot.assertNotEmitted(timeline.boundary_moved):
        qtbot.mousePress(timeline, Qt.MouseButton.LeftButton, pos=QPoint(x, 4))
        qtbot.mouseRelease(timeline, Qt.MouseButton.LeftButton, pos=QPoint(int(timeline.x_of(5)), 4))
        qtbot.keyClick(timeline, Qt.Key.Key_Right)
    assert "read-only" in timeline.tooltip_at(QPoint(x, 4).toPointF())


def test_a_lane_names_its_block_and_says_its_rate(timeline, qtbot):
    with qtbot.waitSignal(timeline.module_clicked) as clicked:
        qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton, pos=cell(timeline, 3, 1))
    assert clicked.args == ["block1"]
    assert timeline.tooltip_at(cell(timeline, 0, 1).toPointF()) == "block1 in epoch 1: frozen; stage 0"
    assert timeline.tooltip_at(cell(timeline, 4, 4).toPointF()) == "head (the head) in epoch 5: learning at 0.01; stage 4"


def test_the_now_line_marks_where_the_run_is(timeline):
    timeline.set_now(2.5)
    image = timeline.grab().toImage()
    assert image.pixelColor(int(timeline.x_of(2.5)), cell(timeline, 0, 2).y()) == NOW_COLOUR
    timeline.set_now(None)
    assert timeline.grab().toImage().pixelColor(int(timeline.x_of(2.5)), cell(timeline, 0, 2).y()) != NOW_COLOUR


def test_a_long_run_is_drawn_a_column_per_few_epochs(qtbot):
    t = Timeline()
    qtbot.addWidget(t)
    schedule, _ = gradual(epochs=5000)
    t.set_schedule(schedule, 5000, [])
    assert t.columns[-1][1] == 5000 and len(t.columns) <= 6  # the stages, merged
    assert t.plan_at(4999.0).rates == schedule.plan_at(4999).rates
