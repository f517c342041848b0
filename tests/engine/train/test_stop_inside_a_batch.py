"""A stop inside a slow batch: the engine checks the stop flag between layers (forward and backward), in the
training step, the validation pass and the feature cache's extraction, and ends as a stop between batches
does; its hooks are off the model afterwards, and the out-of-memory retries still work."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from engine import events as ev
from engine.model.assemble import assemble as real_assemble
from engine.runs import checkpoint
from engine.runs import folder as run
from engine.train import loop as training
from engine.train.interrupt import StopChecks


def _owns_parameters(module: torch.nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


@pytest.fixture
def slow_block(monkeypatch):
    """Makes a block of the real model slow on one of its calls: `slow_block(stop, block="block2", call=n,
    train_mode=True, backward=False)` and the `n`-th forward of `block` in that mode (or the backward pass
    through it) lasts until the stop flag is set, which another thread (the person pressing Stop) does once
    that call has begun. Returns a record of what ran after the flag was set: `layers` (modules with
    parameters of their own whose forward finished) and `gradients` (parameters whose gradient was computed),
    and the model (`model`). It wraps whatever `assemble` the loop has then (another fixture's, say)."""
    rec = SimpleNamespace(model=None, layers=[], gradients=[], calls=0, reached=threading.Event())

    def make(stop: threading.Event, block: str = "block2", call: int = 1, train_mode: bool = True,
             backward: bool = False):
        inner = training.assemble
        def slow_until_stopped(*_):
            rec.reached.set()
            assert stop.wait(60), "nobody pressed Stop"

        def hook(module, _args, out):
            if module.training != train_mode:
                return
            rec.calls += 1
            if rec.calls == call:
                if backward:
                    out.register_hook(slow_until_stopped)
                else:
                    slow_until_stopped()

        def assemble(*a, **kw):
            built = inner(*a, **kw)
            model = rec.model = built.model
            model.get_submodule(block).register_forward_hook(hook)
            for name, m in model.named_modules():
                if _owns_parameters(m):
                    m.register_forward_hook(lambda _m, _a, _o, name=name: rec.layers.append(name)
                                            if stop.is_set() else None)
            for name, p in model.named_parameters():
                if p.requires_grad:
                    p.register_hook(lambda _g, name=name: rec.gradients.append(name) if stop.is_set() else None)
            return built

        def press_stop():
            if rec.reached.wait(60):
                stop.set()

        monkeypatch.setattr(training, "assemble", assemble)
        threading.Thread(target=press_stop, daemon=True).start()
        return rec

    return make


class Events(ev.Handler):
    def __init__(self, stop_after_batch: int | None = None, stop: threading.Event | None = None):
        self.events: list = []
        self.stop_after_batch, self.stop = stop_after_batch, stop

    def on_other(self, e):
        self.events.append(e)

    def on_batch_ended(self, e):
        self.events.append(e)
        if e.global_step == self.stop_after_batch:
            self.stop.set()

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def _stop_hooks_left(model: torch.nn.Module) -> list:
    hooks = [h for m in model.modules() for h in m._forward_pre_hooks.values()]
    hooks += [h for p in model.parameters() for h in (p._backward_hooks or {}).values()]
    return [h for h in hooks if isinstance(getattr(h, "__self__", None), StopChecks)]


def _same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def _checkpoint_weights(run_dir) -> dict:
    return {k[len("model/"):]: v for k, v in load_file(run_dir / checkpoint.FILENAME).items()
            if k.startswith("model/")}


def test_a_stop_inside_the_forward_pass_ends_before_the_next_layer(tmp_path, slow_block, project_factory):
    stop = threading.Event()
    rec = slow_block(stop, block="block2", call=5)  # epoch 2, its second batch (3 batches an epoch)
    events = Events()
    run_dir, result = run.train(project_factory(train__epochs=3), tmp_path / "run", callbacks=[events], stop=stop)
    assert rec.layers == []  # block3 and the head never ran once the flag was set
    assert rec.gradients == []
    assert [e.global_step for e in events.of(ev.BatchEnded)] == [1, 2, 3, 4]
    assert [e.epoch for e in events.of(ev.EpochEnded)] == [1]
    end = events.of(ev.FitEnded)[0]
    assert end.stopped_by_user and not end.stopped_early and end.epochs_completed == 1
    assert result.stopped_by_user and result.summary["stopped_by_user"] and result.summary["epochs_completed"] == 1
    # the model kept is epoch 1's (the best, the only one), which the run folder keeps to resume from
    assert checkpoint.read(run_dir).epoch == 1
    model = result.model.state_dict()
    assert _same(model, _checkpoint_weights(run_dir))
    assert _same(model, load_file(run_dir / "model.safetensors"))
    assert _stop_hooks_left(result.model) == []


def test_a_stop_inside_the_backward_pass_ends_before_the_next_gradient(slow_block, project_factory):
    """Before any epoch ends: the model is exactly what a stop between batches 1 and 2 leaves (the
    interrupted batch's BatchNorm statistics are put back, its gradients dropped, the optimizer never
    stepped)."""
    p = project_factory()
    stop_between = threading.Event()
    between = training.fit(p, callbacks=[Events(stop_after_batch=1, stop=stop_between)], stop=stop_between)

    stop = threading.Event()
    rec = slow_block(stop, block="block2", call=2, backward=True)
    events = Events()
    inside = training.fit(p, callbacks=[events], stop=stop)
    assert rec.layers == []
    # the first parameter whose gradient came after the flag may have been computed, no other
    assert len(rec.gradients) <= 1 and all(n.startswith("block2.") for n in rec.gradients)
    assert [e.global_step for e in events.of(ev.BatchEnded)] == [1]
    assert events.of(ev.EpochEnded) == [] and inside.stopped_by_user and inside.summary["epochs_completed"] == 0
    assert _same(inside.model.state_dict(), between.model.state_dict())
    assert all(p.grad is None for p in inside.model.parameters())
    assert _stop_hooks_left(inside.model) == []


def test_a_stop_inside_the_validation_pass(slow_block, project_factory):
    stop = threading.Event()
    rec = slow_block(stop, block="block1", call=1, train_mode=False)  # epoch 1's first validation batch
    events = Events()
    result = training.fit(project_factory(), callbacks=[events], stop=stop)
    assert rec.layers == [] and rec.gradients == []
    assert len(events.of(ev.BatchEnded)) == 3 and events.of(ev.EpochEnded) == []
    assert result.stopped_by_user and result.summary["epochs_completed"] == 0
    assert result.summary["best_val_accuracy"] is None
    assert _stop_hooks_left(result.model) == []


def test_a_stop_while_the_feature_cache_is_built(slow_block, project_factory):
    stop = threading.Event()
    rec = slow_block(stop, block="block1", call=1, train_mode=False)  # the first batch of the extraction
    events = Events()
    result = training.fit(project_factory(freeze__preset="feature_extraction"), callbacks=[events], stop=stop)
    assert rec.layers == []
    assert events.of(ev.BatchEnded) == [] and events.of(ev.EpochEnded) == []
    assert result.stopped_by_user and result.summary["epochs_completed"] == 0
    assert result.summary["feature_cache"] is False
    assert not any("not a function of its head's input" in e.text for e in events.of(ev.LogMessage))
    assert _stop_hooks_left(result.model) == []


def test_no_hook_is_left_on_the_model_after_fit(project_factory):
    result = training.fit(project_factory(train__epochs=1))
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in result.model.modules())
    assert all(not p._backward_hooks for p in result.model.parameters())


def test_out_of_memory_retries_still_work_and_a_stop_after_them_too(memory_for, project_factory):
    memory_for.limit[0] = 3
    stop = threading.Event()
    events = Events(stop_after_batch=4, stop=stop)
    result = training.fit(project_factory(train__epochs=3), callbacks=[events], stop=stop)
    assert [r["images_per_pass"] for r in result.summary["out_of_memory_retries"]] == [4, 2]
    assert result.stopped_by_user and result.summary["epochs_completed"] == 1
    assert _stop_hooks_left(result.model) == []


def test_the_hooks_come_off_when_fit_raises(memory_for, project_factory):
    memory_for.limit[0] = 0
    with pytest.raises(torch.OutOfMemoryError):
        training.fit(project_factory(train__epochs=1))
    (model,) = memory_for.models
    assert _stop_hooks_left(model) == []
    assert [len(m._forward_pre_hooks) for m in model.modules()] == [1] + [0] * (len(list(model.modules())) - 1)


def test_a_stop_inside_a_split_batch_after_out_of_memory(tmp_path, memory_for, slow_block, project_factory):
    """Passes of 2 images after two retries; the stop comes in the second pass of epoch 2's first batch, after
    the first pass's backward: its gradients are dropped and the model kept is epoch 1's."""
    memory_for.limit[0] = 3
    stop = threading.Event()
    rec = slow_block(stop, block="block2", call=11)  # epoch 1 took 4 + 4 + 1 passes
    events = Events()
    run_dir, result = run.train(project_factory(train__epochs=3), tmp_path / "run", callbacks=[events], stop=stop)
    assert [r["images_per_pass"] for r in result.summary["out_of_memory_retries"]] == [4, 2]
    assert rec.layers == [] and rec.gradients == []
    assert [e.global_step for e in events.of(ev.BatchEnded)] == [1, 2, 3]
    assert result.stopped_by_user and result.summary["epochs_completed"] == 1
    assert checkpoint.read(run_dir).epoch == 1
    assert _same(result.model.state_dict(), _checkpoint_weights(run_dir))
    assert all(p.grad is None for p in result.model.parameters())
    assert _stop_hooks_left(result.model) == []


class _LastWeights:
    """The run's last checkpoint as the loop ends, before a finished run removes it (as in test_resume.py)."""

    def __init__(self):
        self.weights: dict | None = None

    def __call__(self, e):
        if isinstance(e, ev.FitEnded):
            self.weights = _checkpoint_weights(Path(e.run_dir))


def test_a_run_stopped_inside_a_batch_resumes_bit_identically(tmp_path, monkeypatch, slow_block, project_factory):
    """4 epochs in one go vs a stop inside epoch 3's second batch and a resume: the same weights, bit for bit
    (augmentation and a dropout head use the random generators the interrupted batch disturbed)."""
    p = project_factory(train__epochs=4, data__augment="light", head__kind="mlp", head__hidden=[16],
                        head__dropout=0.3)
    straight_last, parted_last = _LastWeights(), _LastWeights()
    straight, whole = run.train(p, tmp_path / "straight", callbacks=[straight_last])

    stop = threading.Event()
    rec = slow_block(stop, block="block2", call=8)  # epoch 3, its second batch
    parted, first = run.train(p, tmp_path / "parted", stop=stop)
    assert rec.layers == [] and first.stopped_by_user and first.summary["epochs_completed"] == 2
    assert checkpoint.read(parted).epoch == 2
    monkeypatch.setattr(training, "assemble", real_assemble)
    torch.manual_seed(12345)
    _, resumed = run.resume(p, parted, callbacks=[parted_last])

    assert resumed.summary["epochs_completed"] == 4 and resumed.summary["resumed_from_epoch"] == 2
    assert _same(straight_last.weights, parted_last.weights)
    assert _same(load_file(straight / "model.safetensors"), load_file(parted / "model.safetensors"))
    assert [(e.train_loss, e.val_loss, e.val_accuracy, e.lr) for e in whole.history] == \
        [(e.train_loss, e.val_loss, e.val_accuracy, e.lr) for e in resumed.history]
