"""Out of memory in a step: the epoch runs again with half as many images per pass, down to one."""

from __future__ import annotations

import gc
import json
import threading
import weakref

import pytest
import torch

from engine import events as ev
from engine.runs import folder as run
from engine.train import loop as training


def test_out_of_memory_halves_the_pass_and_keeps_the_run(tmp_path, memory_for, project_factory):
    memory_for.limit[0] = 3
    logs = []
    run_dir, result = run.train(project_factory(train__epochs=2), tmp_path / "out", callbacks=[
        lambda e: logs.append(e) if isinstance(e, ev.LogMessage) else None])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs_completed"] == 2 and summary["images_per_pass"] == 2 and summary["batch_size"] == 8
    assert [(r["epoch"], r["images_per_pass"]) for r in summary["out_of_memory_retries"]] == [(1, 4), (1, 2)]
    assert "CUDA out of memory" in summary["out_of_memory_retries"][0]["error"]
    warnings = [m.text for m in logs if m.level == "warning" and "out of memory" in m.text]
    assert len(warnings) == 2 and "running the epoch again with 2 images per pass" in warnings[1]
    assert all(h.train_loss == h.train_loss for h in result.history)  # finite, not NaN
    assert json.loads(json.dumps(summary))  # the retries are plain JSON


def test_split_batches_train_like_whole_ones(memory_for, project_factory):
    """With nothing batch-dependent below the head (frozen backbone in eval mode), summing the parts'
    gradients gives the whole batch's step: the weights match a run that had memory enough."""
    p = project_factory(freeze__preset="feature_extraction", train__epochs=2,
                       train__class_weights=True, train__label_smoothing=0.1)
    whole = training.fit(p, feature_cache=False)
    memory_for.limit[0] = 3
    split = training.fit(p, feature_cache=False)
    assert [r["images_per_pass"] for r in split.summary["out_of_memory_retries"]] == [4, 2]
    a, b = whole.model.state_dict(), split.model.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    assert split.history[-1].val_accuracy == whole.history[-1].val_accuracy


def test_out_of_memory_at_one_image_is_an_error(memory_for, project_factory):
    memory_for.limit[0] = 0
    logs = []
    with pytest.raises(torch.OutOfMemoryError):
        training.fit(project_factory(train__epochs=1), callbacks=[
            lambda e: logs.append(e.text) if isinstance(e, ev.LogMessage) else None])
    assert [t.split(" images per pass")[0].rsplit(" ", 1)[-1] for t in logs if "out of memory" in t] == ["8", "4", "2"]


def test_out_of_memory_while_caching_features_trains_without_the_cache(memory_for, project_factory):
    memory_for.limit[0] = 3
    logs = []
    result = training.fit(project_factory(freeze__preset="feature_extraction", train__epochs=1),
                          callbacks=[lambda e: logs.append(e.text) if isinstance(e, ev.LogMessage) else None])
    assert any("out of memory while caching" in t for t in logs)
    assert result.summary["feature_cache"] is False and result.summary["epochs_completed"] == 1
    assert result.summary["images_per_pass"] == 2


def test_a_retry_leaves_garbage_collection_to_whoever_turned_it_off(memory_for, project_factory):
    """The window collects garbage in its own thread (gui/tasks.py turns the automatic collector off): a Qt
    object freed in the training thread deadlocks against it (CI hung in the window's out-of-memory test). So
    a retry after running out of memory collects only while automatic collection is on."""
    memory_for.limit[0] = 3
    freed_in = []

    class Cycle:
        pass

    garbage = Cycle()
    garbage.me = garbage
    weakref.finalize(garbage, lambda: freed_in.append(threading.current_thread().name))
    del garbage
    gc.disable()
    try:
        result = training.fit(project_factory(train__epochs=1), feature_cache=False)
    finally:
        gc.enable()
    assert result.summary["out_of_memory_retries"] and freed_in == []
    gc.collect()
    assert freed_in == [threading.current_thread().name]
