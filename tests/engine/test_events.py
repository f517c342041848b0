"""Events are listed once, each with its name; a Handler dispatches by that name."""

from engine import events as ev
from engine.wording import clock, training_failed


def test_every_event_is_listed_once_with_its_own_name():
    names = [e.NAME for e in ev.EVENTS]
    assert len(set(names)) == len(names) == 6
    assert {cls.__name__ for cls in ev.EVENTS} == {"FitStarted", "BatchEnded", "LayerActivity", "EpochEnded",
                                                   "LogMessage", "FitEnded"}


def test_a_handler_calls_the_method_for_the_event_and_ignores_the_rest():
    seen = []

    class Logs(ev.Handler):
        def on_log(self, event):
            seen.append(event.text)

    handler = Logs()
    handler(ev.LogMessage("hello"))
    handler(ev.FitEnded(1, 1.0, 1.0, False, False, 1.0, True, ""))
    assert seen == ["hello"]

    class Rest(Logs):
        def on_other(self, event):
            seen.append(event.NAME)

    Rest()(ev.FitEnded(1, 1.0, 1.0, False, False, 1.0, True, ""))
    assert seen == ["hello", "fit_ended"]


def test_one_clock_for_the_command_line_and_the_window():
    assert [clock(s) for s in (0, 75, 3599.6, 3600, 7325)] == ["0:00", "1:15", "1:00:00", "1:00:00", "2:02:05"]
    assert clock(None) == clock(float("nan")) == clock(float("inf")) == clock(-1) == "--:--"


def test_failure_wording():
    assert training_failed(RuntimeError("boom")) == "training failed: RuntimeError: boom"
    assert "smaller batch size" in training_failed(MemoryError())
