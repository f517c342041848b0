"""What each of the two gloo processes of tests/engine/distributed/test_two_ranks.py does (and the same pieces
for one process): real DDP, a file:// rendezvous in the test's folder, no ports."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine import events as ev
from engine.distributed import ddp, worker
from engine.distributed.world import World
from engine.runs import folder
from engine.train.loop import _Fit
from tests.imagesets import shapes_project

STEPS, UNFREEZE_AT, BATCH = 6, 3, 8


def unfreeze_run(world: World, rewrap: bool) -> dict[str, torch.Tensor]:
    """An MLP without BatchNorm, its first layer frozen, trained `STEPS` SGD steps on batches of `BATCH` (each
    rank a contiguous half) with a mean-reduced loss; the first layer is unfrozen between steps `UNFREEZE_AT`
    and `UNFREEZE_AT + 1` (and DDP re-wrapped with `rewrap`). Returns the parameters at the end."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    model[0].requires_grad_(False)
    x, y = torch.randn(STEPS * BATCH, 6), torch.randint(0, 3, (STEPS * BATCH,))
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    trained = ddp.wrap(model, world)
    share = ddp.per_rank_batch(BATCH, world)
    for step in range(STEPS):
        if step == UNFREEZE_AT:
            model[0].requires_grad_(True)
            opt.add_param_group({"params": list(model[0].parameters())})
            if rewrap:
                trained = ddp.wrap(model, world)
        mine = slice(step * BATCH + world.rank * share, step * BATCH + (world.rank + 1) * share)
        opt.zero_grad()
        F.cross_entropy(trained(x[mine]), y[mine]).backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def validation(world: World, root: Path) -> tuple[float, float, int]:
    """The loop's validation pass on an untrained model over 9 images in batches of 2 (5 batches: rank 0 takes
    3, the last holding 1 image, rank 1 takes 2); rank 1's BatchNorm statistics are changed first (rank 0's
    count)."""
    f = _Fit(validation_project(root), [], None, "", allow_cache=False, world=world)
    try:
        f.setup()
        if world.rank == 1:
            with torch.no_grad():
                for b in f.state.model.buffers():
                    b.add_(1)
        va = f.evaluate()
        return va.mean_loss, va.accuracy, va.seen
    finally:
        f.close()


def validation_project(root: Path):
    return shapes_project(root / "val-set", per_class=7, train__batch_size=2, data__val_fraction=0.43)


def loop_project(root: Path):
    return shapes_project(root / "loop-set", per_class=6, **{"freeze.preset": "last_blocks", "freeze.last_blocks": 1})


def train_project(root: Path, **settings):
    return shapes_project(root / "train-set", per_class=8, train__epochs=2, **settings)


def write_images(root: Path) -> None:
    """The image folders, written once before the processes start (as a person's data is there before a run)."""
    for make in (validation_project, loop_project, train_project):
        make(root)


def unfreeze_in_the_loop(world: World, root: Path, rewrap: bool) -> dict[str, torch.Tensor]:
    """The loop itself: an epoch with block3 and the head training, then block2 unfrozen (its own optimizer
    group) and `wrap_trainee` called (or not), and another epoch. Returns block2's parameters."""
    p = loop_project(root)
    f = _Fit(p, [], None, "", allow_cache=False, world=world)
    try:
        f.setup()
        f.train_epoch(1)
        block2 = f.state.model.block2
        block2.requires_grad_(True)
        f.state.optimizer.add_param_group({"params": list(block2.parameters()), "lr": 0.05})
        if rewrap:
            f.wrap_trainee()
        f.train_epoch(2)
        return {k: v.detach().clone() for k, v in block2.state_dict().items()}
    finally:
        f.close()


class Events(ev.Handler):
    def __init__(self, stop_at: int | None = None, stop: threading.Event | None = None):
        self.names: list[str] = []
        self.stop_at, self.stop = stop_at, stop

    def on_other(self, e):
        self.names.append(e.NAME)

    def on_batch_ended(self, e):
        self.names.append(e.NAME)
        if e.global_step == self.stop_at:
            self.stop.set()


def train_run(world: World, root: Path, name: str, stop_at: int | None = None, **settings) -> dict[str, Any]:
    """`engine.runs.folder.train` of a shapes project into ``root/name``; rank 1 asks to stop at `stop_at`."""
    stop = threading.Event()
    events = Events(stop_at if world.rank == 1 else None, stop)
    p = train_project(root, **settings)
    run_dir, result = folder.train(p, root / name, callbacks=[events], stop=stop, world=world)
    return {"run_dir": run_dir, "summary": result.summary, "events": events.names,
            "state": {k: v.detach().clone() for k, v in result.model.state_dict().items()}}


def default_folder_run(world: World, root: Path) -> dict[str, Any]:
    """A run given no folder: rank 0 claims a new one under ``train.out_dir``, the other rank is told its name."""
    run_dir, result = folder.train(train_project(root, **{"train.epochs": 1}), world=world)
    return {"run_dir": run_dir, "epochs": result.summary["epochs_completed"]}


def out_of_memory(world: World, root: Path) -> tuple[str, int, bool]:
    """Rank 1 runs out of memory in its second training step: how each rank's run ends (`worker.describe`)."""
    p = train_project(root)
    calls = [0]

    def fail(_module, _args):
        calls[0] += 1
        if world.rank == 1 and calls[0] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    f = _Fit(p, [], None, "", allow_cache=False, world=world)
    try:
        f.setup()
        f.state.model.register_forward_pre_hook(fail)
        f.run()
        return "finished", 0, True
    except BaseException as exc:  # noqa: BLE001 - what the worker would say
        return worker.describe(exc)
    finally:
        f.close()


def every_scenario(world: World, root: Path) -> dict[str, Any]:
    """Everything the tests check, in one pair of processes (starting one costs seconds); out of memory last,
    as it ends the process group."""
    return {
        "unfrozen": unfreeze_run(world, rewrap=True),
        "unfrozen_without_rewrap": unfreeze_run(world, rewrap=False),
        "validation": validation(world, root),
        "loop_unfrozen": unfreeze_in_the_loop(world, root, rewrap=True),
        "loop_unfrozen_without_rewrap": unfreeze_in_the_loop(world, root, rewrap=False),
        "run": train_run(world, root, "run-2"),
        "cached": train_run(world, root, "cached-2", **{"freeze.preset": "feature_extraction"}),
        "scheduled": train_run(world, root, "scheduled-2", **{"freeze.preset": "feature_extraction",
                                                             "freeze.stages": [{"start": 1, "unfreeze": 2}]}),
        "stopped": train_run(world, root, "stopped-2", stop_at=4),  # in epoch 2: epoch 1 checkpointed
        "default_folder": default_folder_run(world, root),
        "out_of_memory": out_of_memory(world, root),
    }


def rank_main(rank: int, root: str) -> None:
    """One of the two processes (`torch.multiprocessing.spawn`'s entry): join, run the scenarios, save what
    they returned to ``root/rank<rank>.pt``."""
    torch.set_num_threads(1)
    world = World(rank=rank, local_rank=rank, size=2)
    world.join("gloo", init_method=f"file://{root}/rendezvous", timeout=120)
    try:
        results = every_scenario(world, Path(root))
    finally:
        world.leave()
    torch.save(results, Path(root) / f"rank{rank}.pt")
