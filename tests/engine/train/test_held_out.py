"""The test images are held out of training: a run with a test share trains and validates on what it would
without one, minus the test images, and reads none of them while it trains or chooses the best epoch."""

from __future__ import annotations

from engine import events as ev
from engine import loading
from engine.train.loop import fit, project_data


def test_a_run_with_a_test_share_never_reads_the_test_images(project_factory, monkeypatch):
    plain = project_data(project_factory())
    p = project_factory(data__test_fraction=0.25)
    bundle = project_data(p)
    test = {s.path for s in bundle.test.samples}
    assert len(test) == 6 and [s.path for s in bundle.train.samples] == [
        s.path for s in plain.train.samples if s.path not in test]
    assert bundle.val.samples == plain.val.samples

    read: list[str] = []  # every image decoded, in order
    decode = loading.ImageDataset._decode
    monkeypatch.setattr(loading.ImageDataset, "_decode", lambda self, path: (read.append(path), decode(self, path))[1])
    started, epochs_read = [], []  # the images read up to each epoch's end (the best epoch is chosen there)

    def record(e):
        if isinstance(e, ev.FitStarted):
            started.append(e)
        elif isinstance(e, ev.EpochEnded):
            epochs_read.append(len(read))

    fit(p, callbacks=[record])
    assert (started[0].train_size, started[0].val_size) == (len(plain.train) - 6, len(plain.val)) == (12, 6)
    assert len(epochs_read) == p.train.epochs
    seen = set(read[:epochs_read[-1]])
    assert seen == {s.path for s in bundle.train.samples + bundle.val.samples} and not seen & test
