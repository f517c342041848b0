"""The training loop: events in order, repeatable, stop within a batch, early stop, feature cache."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from engine import events as ev
from engine.device import pick_device
from engine.errors import DataError, ProjectError
from engine.train.loop import fit, project_data
from engine.train.optim import class_weights


class Recorder(ev.Handler):
    """Every event, in order; sets `stop` at batch `stop_at`."""

    def __init__(self, stop_at: int | None = None, stop: threading.Event | None = None):
        self.events: list = []
        self.stop_at, self.stop = stop_at, stop

    def on_other(self, e):
        self.events.append(e)

    def on_batch_ended(self, e):
        self.events.append(e)
        if self.stop_at and e.global_step == self.stop_at:
            self.stop.set()

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def _val_accuracy(model, result_data):
    """Accuracy of `model` on a list of (x, y) pairs, computed here rather than taken from the loop."""
    model.eval()
    with torch.no_grad():
        x = torch.stack([x for x, _ in result_data])
        y = torch.tensor([y for _, y in result_data])
        return (model(x).argmax(1) == y).float().mean().item()


def _val_items(project):
    bundle = project_data(project)
    return [bundle.val[i] for i in range(len(bundle.val))]


def test_fit_emits_events_in_order_and_is_repeatable(project_factory):
    p = project_factory(data__augment="light", train__epochs=2)
    rec = Recorder()
    first = fit(p, callbacks=[rec])
    kinds = [type(e).__name__ for e in rec.events if not isinstance(e, ev.LogMessage)]
    steps = rec.of(ev.FitStarted)[0].steps_per_epoch
    assert steps == 3  # 18 training images in batches of 8
    assert kinds == ["FitStarted"] + (["BatchEnded"] * steps + ["EpochEnded"]) * 2 + ["FitEnded"]
    batches = rec.of(ev.BatchEnded)
    assert [b.global_step for b in batches] == list(range(1, 7))
    assert all(b.images_per_second > 0 and b.eta_seconds >= 0 and b.lr > 0 for b in batches)
    assert batches[-1].eta_seconds == pytest.approx(0.0, abs=1e-6) or batches[-1].eta_seconds < batches[0].eta_seconds
    end = rec.of(ev.FitEnded)[0]
    assert end.epochs_completed == 2 and not end.stopped_by_user and end.frozen_verified
    assert first.summary["trainable_params"] == first.summary["total_params"] > 0

    second = fit(p)
    assert [(h.train_loss, h.val_loss, h.val_accuracy) for h in second.history] == \
        [(h.train_loss, h.val_loss, h.val_accuracy) for h in first.history]
    for (k, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    other = fit(project_factory(data__augment="light", train__seed=1))
    assert [h.train_loss for h in other.history] != [h.train_loss for h in first.history]


def test_training_learns_the_shapes(project_factory):
    p = project_factory(per_class=12, train__epochs=4, train__batch_size=6, train__lr=0.02,
                       data__val_fraction=0.25)
    result = fit(p)
    losses = [h.train_loss for h in result.history]
    assert losses[-1] < losses[0] * 0.8
    assert result.history[-1].train_accuracy > 0.5


def test_stop_is_honoured_within_one_batch(project_factory):
    stop = threading.Event()
    rec = Recorder(stop_at=2, stop=stop)
    result = fit(project_factory(), callbacks=[rec], stop=stop)
    assert len(rec.of(ev.BatchEnded)) == 2
    assert rec.of(ev.EpochEnded) == []
    end = rec.of(ev.FitEnded)[0]
    assert end.stopped_by_user and end.epochs_completed == 0 and not end.stopped_early
    assert result.stopped_by_user and result.summary["best_val_accuracy"] is None
    out = result.model(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 3) and torch.isfinite(out).all()


def test_stop_after_an_epoch_keeps_the_best_model(project_factory):
    stop = threading.Event()
    p = project_factory(train__epochs=3)
    rec = Recorder(stop_at=4, stop=stop)  # the first batch of epoch 2
    result = fit(p, callbacks=[rec], stop=stop)
    assert len(rec.of(ev.BatchEnded)) == 4
    assert [e.epoch for e in rec.of(ev.EpochEnded)] == [1]
    assert result.summary["epochs_completed"] == 1 and result.stopped_by_user
    assert _val_accuracy(result.model, _val_items(p)) == pytest.approx(result.history[0].val_accuracy)


def test_time_a_callback_holds_the_loop_is_not_counted_as_training(project_factory):
    """A paused run (the window's pause is a callback that waits) reports the seconds it trained."""
    hold = 0.5

    def pause_at_the_first_batch(e):
        if isinstance(e, ev.BatchEnded) and e.global_step == 1:
            time.sleep(hold)

    rec = Recorder()
    wall = time.perf_counter()
    result = fit(project_factory(train__epochs=1), callbacks=[rec, pause_at_the_first_batch])
    wall = time.perf_counter() - wall
    (epoch,) = rec.of(ev.EpochEnded)
    assert wall - result.summary["seconds"] >= hold
    assert rec.of(ev.FitEnded)[0].seconds == result.summary["seconds"]
    assert 0 < epoch.seconds <= result.summary["seconds"] and epoch.seconds < wall - hold
    assert rec.of(ev.BatchEnded)[-1].images_per_second > 18 / (wall - hold)


def test_early_stopping_keeps_the_best_epoch(project_factory):
    # A learning rate this small leaves the predictions as they are: no epoch beats the first.
    p = project_factory(train__epochs=6, train__lr=1e-9, train__early_stop_patience=2)
    rec = Recorder()
    result = fit(p, callbacks=[rec])
    assert [e.epoch for e in rec.of(ev.EpochEnded)] == [1, 2, 3]
    assert [e.is_best for e in rec.of(ev.EpochEnded)] == [True, False, False]
    end = rec.of(ev.FitEnded)[0]
    assert end.stopped_early and not end.stopped_by_user
    assert result.summary["stopped_early"] and result.summary["best_epoch"] == 1
    assert any("early stop" in e.text for e in rec.of(ev.LogMessage))


@pytest.mark.parametrize("arch, head", [("thaw_digits_cnn", "mlp"), ("resnet18", "linear")])
def test_feature_cache_matches_the_uncached_path(tmp_path, arch, head, project_factory):
    p = project_factory(model__arch=arch, freeze__preset="feature_extraction", head__kind=head,
                       head__hidden=[16], head__dropout=0.3, train__epochs=2, train__lr=0.01)
    cached_rec, plain_rec = Recorder(), Recorder()
    cached = fit(p, callbacks=[cached_rec])
    plain = fit(p, callbacks=[plain_rec], feature_cache=False)
    assert cached_rec.of(ev.FitStarted)[0].feature_cache is True
    assert plain_rec.of(ev.FitStarted)[0].feature_cache is False
    assert [type(e) for e in cached_rec.events if not isinstance(e, ev.LogMessage)] == \
        [type(e) for e in plain_rec.events if not isinstance(e, ev.LogMessage)]
    for a, b in zip(cached.history, plain.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-4)
    x = torch.stack([x for x, _ in _val_items(p)])
    cached.model.eval()
    plain.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(cached.model(x), plain.model(x), rtol=1e-4, atol=1e-5)
    assert cached.summary["frozen_verified"] and cached.summary["frozen_checked"] > 0


def test_no_cache_when_the_backbone_trains_or_images_are_augmented(project_factory):
    for settings in ({"freeze__preset": "last_blocks"}, {"freeze__preset": "feature_extraction",
                                                         "data__augment": "light"}):
        rec = Recorder()
        result = fit(project_factory(train__epochs=1, **settings), callbacks=[rec])
        assert rec.of(ev.FitStarted)[0].feature_cache is False
        assert result.summary["frozen_verified"]
    # BatchNorm statistics of frozen blocks are part of the check: last_blocks leaves them unchanged.
    assert result.summary["frozen_checked"] > 0


def test_data_errors_come_before_training(tmp_path, project_factory):
    (tmp_path / "train" / "only").mkdir(parents=True)
    from tests.imagesets import make_image_folder

    make_image_folder(tmp_path / "train", per_class=3, classes=("only",))
    rec = Recorder()
    with pytest.raises(DataError, match="only one class"):
        fit(project_factory(), callbacks=[rec])
    assert rec.events == []


def test_bad_settings_name_the_key(project_factory):
    p = project_factory()
    p.train.lr = -1.0  # set directly, as a GUI bug might: fit still checks
    with pytest.raises(ProjectError, match="train.lr"):
        fit(p)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_device_is_a_project_error():
    with pytest.raises(ProjectError, match="train.device.*CUDA is not available"):
        pick_device("cuda")
    assert pick_device("auto").type in ("cpu", "mps")


def test_class_weights_are_inverse_frequency():
    w = class_weights([2, 6, 4])
    assert torch.allclose(w, torch.tensor([2.0, 2 / 3, 1.0]))


def test_ties_in_validation_accuracy_go_to_the_lower_validation_loss(tmp_path):
    """A small validation set saturates: the first epoch to reach the top accuracy is often not the best model."""
    from engine import project as projects
    from engine.demo.scenarios import ensure_demo

    path = ensure_demo("inductive", per_class=10, seed=0, root=tmp_path, val_per_class=3)
    p = projects.apply_overrides(projects.load(path), ["train.device=cpu", "train.epochs=8"])
    result = fit(p, run_dir=str(tmp_path / "run"))
    scores = [(e.val_accuracy, -e.val_loss) for e in result.history]
    top = max(a for a, _ in scores)
    assert sum(a == top for a, _ in scores) >= 2  # there is a tie to break
    best = max(range(len(scores)), key=scores.__getitem__) + 1
    assert result.summary["best_epoch"] == best
    assert best != next(i + 1 for i, (a, _) in enumerate(scores) if a == top)  # the old rule would differ
    assert [e.is_best for e in result.history].count(True) >= 2


def test_the_end_event_counts_the_skipped_files(tmp_path, project_factory):
    p = project_factory(train__epochs=1)
    classes = sorted(d for d in (tmp_path / "train").iterdir() if d.is_dir())
    (classes[0] / "empty.png").write_bytes(b"")
    (classes[1] / "page.png").write_bytes(b"<html>not an image</html>")
    rec = Recorder()
    result = fit(p, callbacks=[rec])
    assert rec.of(ev.FitEnded)[0].skipped_files == 2 == len(result.skipped)
