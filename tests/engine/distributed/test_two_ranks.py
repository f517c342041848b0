"""Two real gloo processes (DDP, a file:// rendezvous in the test's folder) against one process: the same
training across an unfreeze when DDP is re-wrapped (and not without), validation exactly as one process,
one run folder written by rank 0, a stop agreed by both, out of memory ending both. The two processes run
every scenario once (tests/engine/distributed/ranks.py); each test checks one behaviour."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from engine.distributed.world import World
from engine.runs import folder
from tests.engine.distributed import ranks


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("two-ranks")
    ranks.write_images(root)
    mp.spawn(ranks.rank_main, args=(str(root),), nprocs=2, join=True)
    return root, [torch.load(root / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def test_half_batches_on_two_ranks_train_as_full_batches_on_one_across_an_unfreeze(two):
    _, (r0, r1) = two
    single = ranks.unfreeze_run(World(), rewrap=True)
    assert _max_diff(r0["unfrozen"], single) < 1e-6
    assert all(torch.equal(r0["unfrozen"][k], r1["unfrozen"][k]) for k in single)


def test_without_rewrapping_the_unfrozen_layer_drifts(two):
    """The bug re-wrapping prevents (Lightning#20340): DDP does not average the gradients of a parameter that
    was frozen when it was built, so each rank trains it on its own half batch."""
    _, (r0, r1) = two
    single = ranks.unfreeze_run(World(), rewrap=False)
    assert _max_diff(r0["unfrozen_without_rewrap"], single) > 1e-3
    assert _max_diff(r0["unfrozen_without_rewrap"], r1["unfrozen_without_rewrap"]) > 1e-3


def test_the_loops_wrap_trainee_keeps_a_block_unfrozen_mid_run_the_same_on_both_ranks(two):
    _, (r0, r1) = two
    assert all(torch.equal(r0["loop_unfrozen"][k], r1["loop_unfrozen"][k]) for k in r0["loop_unfrozen"])
    assert _max_diff(r0["loop_unfrozen_without_rewrap"], r1["loop_unfrozen_without_rewrap"]) > 0


def test_distributed_validation_equals_one_process_exactly(two, tmp_path):
    root, (r0, r1) = two
    f = ranks._Fit(ranks.validation_project(root), [], None, "", allow_cache=False)
    try:
        f.setup()
        va = f.evaluate()
        assert va.seen == 9 and f.val_loader.sampler.total == 5  # 9 images in batches of 2
    finally:
        f.close()
    assert r0["validation"] == r1["validation"] == (va.mean_loss, va.accuracy, va.seen)


def test_rank_0_alone_writes_the_run_folder_with_the_files_of_a_single_process_run(two, tmp_path):
    root, (r0, r1) = two
    single_dir, _ = folder.train(ranks.train_project(root), tmp_path / "run-1")
    assert r0["run"]["run_dir"] == r1["run"]["run_dir"] == root / "run-2"
    names = sorted(p.name for p in (root / "run-2").iterdir())
    assert names == sorted(p.name for p in single_dir.iterdir())
    assert "events.jsonl" in names and not any(n.endswith(".tmp") for n in names)
    assert r0["run"]["summary"]["world_size"] == 2
    metrics = (root / "run-2" / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 1 + 2 * 2  # header, then train and val rows of 2 epochs, written once
    events = (root / "run-2" / "events.jsonl").read_text()
    assert events.count('"fit_started"') == events.count('"fit_ended"') == 1 and events.count('"epoch_ended"') == 2
    assert r1["run"]["events"] and not r1["run"]["summary"].get("run_dir")  # rank 1 trained, wrote nothing


def test_given_no_folder_rank_0_alone_claims_one_and_the_other_rank_trains_into_it(two):
    """The claim (an exclusive create and the lock) is rank 0's: the other rank is never refused as "another Thaw
    run is training" and makes no folder of its own."""
    root, (r0, r1) = two
    run_dir = r0["default_folder"]["run_dir"]
    assert r1["default_folder"]["run_dir"] == run_dir and r1["default_folder"]["epochs"] == 1
    assert [p.name for p in (root / "train-set" / "runs").iterdir()] == [run_dir.name]
    assert (run_dir / "model.safetensors").is_file() and not (run_dir / ".lock").exists()


def test_both_ranks_end_with_the_same_model(two):
    _, (r0, r1) = two
    for run in ("run", "cached"):
        a, b = r0[run]["state"], r1[run]["state"]
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_unfreezing_schedule_rewraps_at_its_transition_and_both_ranks_train_alike(two):
    """The schedule's transition (`_Fit.apply_stage`) wraps DDP again: the blocks it unfreezes train, with
    averaged gradients on both ranks, so both end with the same model (without the re-wrap, tried: block3 did
    not train at all)."""
    _, (r0, r1) = two
    a, b = r0["scheduled"]["state"], r1["scheduled"]["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["block3.0.weight"], r0["cached"]["state"]["block3.0.weight"])  # it trained
    for r in (r0, r1):
        s = r["scheduled"]["summary"]
        assert s["frozen_verified"] and not s["feature_cache"] and s["epochs_completed"] == 2
        assert "log" in r["scheduled"]["events"]  # (the stage's line among them)


def test_the_feature_cache_is_computed_in_parts_and_shared(two):
    _, (r0, r1) = two
    for r in (r0, r1):
        summary = r["cached"]["summary"]
        assert summary["feature_cache"] and summary["epochs_completed"] == 2 and summary["train_size"] == 18
        assert summary["frozen_verified"] and summary["frozen_checked"] > 0  # frozen BatchNorm kept its statistics


def test_a_stop_asked_of_one_rank_stops_both_after_the_same_batch(two):
    _, (r0, r1) = two
    for r in (r0, r1):
        assert r["stopped"]["summary"]["stopped_by_user"]
        assert r["stopped"]["events"].count("batch_ended") == 4  # the first batch of epoch 2 (3 an epoch)
        assert r["stopped"]["summary"]["epochs_completed"] == 1
    assert (two[0] / "stopped-2" / "checkpoint.safetensors").is_file()  # a stopped run can be continued


def test_out_of_memory_on_one_rank_ends_both_and_names_the_cause(two):
    _, (r0, r1) = two
    message, status, cause = r1["out_of_memory"]
    assert cause and status == 1 and message.startswith("out of memory") and "continue it" in message
    message, status, cause = r0["out_of_memory"]
    assert not cause and status == 1 and message.startswith("lost the other processes")
