"""events.jsonl: every event of a run, appended as it goes, read back as it grows."""

from __future__ import annotations

import math

from engine import events as ev
from engine.runs import folder
from engine.runs.events_file import FILENAME, EventsFile, EventsReader, to_line


def _batch(step: int, loss: float = 0.5) -> ev.BatchEnded:
    return ev.BatchEnded(epoch=1, step=step, steps_per_epoch=9, global_step=step, loss=loss, accuracy=0.5,
                         lr=0.1, images_per_second=10.0, eta_seconds=1.0)


def test_events_come_back_as_they_were_written_and_only_once(tmp_path):
    (tmp_path / "project.thaw.toml").touch()  # a run folder with its first files: the events are written at once
    clock = [0.0]
    writer, reader = EventsFile(tmp_path, clock=lambda: clock[0]), EventsReader(tmp_path)
    writer(ev.LogMessage("hello", "warning"))  # at once
    clock[0] = 0.1
    writer(_batch(1, loss=math.nan))  # within FLUSH_SECONDS of the last write: held back
    writer(_batch(2))
    assert reader.read() == [ev.LogMessage("hello", "warning")]
    clock[0] = 1.0
    writer(_batch(3))
    got = reader.read()
    assert [e.step for e in got] == [1, 2, 3] and math.isnan(got[0].loss) and got[2] == _batch(3)
    assert reader.read() == []


def test_a_line_being_written_is_left_for_the_next_read(tmp_path):
    line = to_line(_batch(1))
    path = tmp_path / FILENAME
    path.write_text(line + line[:20])
    reader = EventsReader(tmp_path)
    assert len(reader.read()) == 1
    with open(path, "a") as f:
        f.write(line[20:] + "not json\n" + '{"event": "from_a_later_thaw"}\n')
    assert reader.read() == [_batch(1)]


def test_events_wait_for_the_run_folder(tmp_path):
    run_dir = tmp_path / "run"
    writer = EventsFile(run_dir)
    writer(ev.LogMessage("before the folder"))
    assert not run_dir.exists()
    run_dir.mkdir()  # taken, but the run has written nothing yet (it may still be refused, and the folder go)
    writer(ev.LogMessage("while the data is read"))
    assert list(run_dir.iterdir()) == []
    (run_dir / "project.thaw.toml").touch()
    writer(ev.LogMessage("after"))
    assert [e.text for e in EventsReader(run_dir).read()] == ["before the folder", "while the data is read", "after"]


def test_a_run_writes_every_event_and_a_resumed_run_appends(project_factory, tmp_path):
    class Stop(ev.Handler):
        def on_epoch_ended(self, e):
            stop.set()

    import threading

    stop = threading.Event()
    p = project_factory(train__epochs=2)
    run_dir, _ = folder.train(p, tmp_path / "run", callbacks=[Stop()], stop=stop)
    first = EventsReader(run_dir).read()
    names = [e.NAME for e in first if not isinstance(e, ev.LogMessage)]
    assert names == ["fit_started", *["batch_ended"] * 3, "epoch_ended", "fit_ended"]
    assert first[[e.NAME for e in first].index("fit_started")].world_size == 1
    folder.resume(p, run_dir)
    again = EventsReader(run_dir).read()
    assert [e.NAME for e in again].count("fit_started") == 2 and again[: len(first)] == first
    assert [e.epoch for e in again if isinstance(e, ev.EpochEnded)] == [1, 2]


def test_layer_activity_goes_through_the_events_file_as_it_came(tmp_path):
    from engine import events as ev
    from engine.runs.events_file import EventsFile, EventsReader

    event = ev.LayerActivity(global_step=50, epoch=1, blocks=("stem", "head"), trained=(False, True),
                             grad_norms=(0.0, 0.25), update_ratios=(0.0, 1e-3), every=50, changed_frozen=())
    (tmp_path / "project.thaw.toml").touch()  # a run folder with its first files: the events are written at once
    EventsFile(tmp_path)(event)
    assert EventsReader(tmp_path).read() == [event]
