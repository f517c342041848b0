"""Several processes: one project trained by 1 process and by 2 (torchrun, gloo) on this machine's CPU, and
the share of a distributed step spent exchanging gradients.

1. Throughput: ``main.py train P`` (one process with 2 threads, and with 1) against ``main.py train P
   --nproc-per-node 2`` (1 thread each), in turn, the real command line each time; images/s is the run's own
   `images_per_second` (training images per second of training, validation left out; all ranks' images), the
   wall time includes starting the processes.
2. Communication: two gloo processes set up the same project with the engine (`_Fit` with a `World` of 2)
   and time its training step (`_Fit.step`, DDP over the model) with the gradient exchange and without it
   (DDP's ``no_sync``), alternating blocks of steps; the share is 1 - without / with (rank 0's medians).
3. The feature cache (preset feature_extraction): the set-up with the cache minus the set-up without it, in
   one process and in two (each computes half the features, then they are exchanged); and that exchange alone.

On a CPU the processes share the same cores, so 2 processes are not expected to be faster: this measures what
the machinery costs, not what GPUs would gain. Scaling efficiency on several GPUs (N-GPU images/s divided by
N x 1-GPU images/s) needs a machine with several GPUs: not measured here. Headline printed last.

    .venv/bin/python bench/distributed.py [--arch resnet18] [--size 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp
from _common import ROOT, engine_project, machine, median, table, write_image_folder


def cli_run(project_file: Path, out: Path, processes: int, threads: int) -> dict:
    cmd = [sys.executable, str(ROOT / "main.py"), "train", str(project_file), "--out", str(out)]
    if processes > 1:
        cmd += ["--nproc-per-node", str(processes)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"ips": summary["images_per_second"], "wall": wall, "acc": summary["best_val_accuracy"]}


def setup_seconds(project_file: str, world, cache: bool) -> tuple[float, int]:
    """Seconds `_Fit.setup` takes (all ranks lined up first), and the bytes of cached features (0 without)."""
    from engine import project as projects
    from engine.train.loop import _Fit

    f = _Fit(projects.load(project_file), [], None, "", allow_cache=cache, world=world)
    try:
        world.any(False)
        t0 = time.perf_counter()
        f.setup()
        seconds = time.perf_counter() - t0
        return seconds, (f.cache.train.tensors[0].nbytes + f.cache.val.tensors[0].nbytes) if f.cache else 0
    finally:
        f.close()


def cache_times(project_file: str, world, repeats: int) -> dict:
    """The feature cache's cost: set-up with it minus without it (alternately), and the exchange of its parts."""
    with_cache, without, size = [], [], 0
    for r in range(repeats):
        for cache in ((True, False) if r % 2 == 0 else (False, True)):
            seconds, nbytes = setup_seconds(project_file, world, cache)
            (with_cache if cache else without).append(seconds)
            size = max(size, nbytes)
    exchange = []
    if world.distributed:
        part = torch.randn(size // 4 // world.size)
        for _ in range(repeats):
            world.any(False)
            t0 = time.perf_counter()
            world.cat(part)
            exchange.append(time.perf_counter() - t0)
    return {"cache": median(with_cache) - median(without), "bytes": size,
            "exchange": median(exchange) if exchange else 0.0}


def in_two(rank: int, project_file: str, cache_file: str, steps: int, block: int, repeats: int, out: str) -> None:
    """One of two gloo processes: the engine's training step with and without the gradient exchange, then the
    feature cache's cost."""
    from engine.distributed.world import World

    torch.set_num_threads(1)
    world = World(rank=rank, local_rank=rank, size=2)
    world.join("gloo", init_method=f"file://{out}/rendezvous", timeout=600)
    try:
        found = step_times(project_file, world, steps, block)
        found["cache"] = cache_times(cache_file, world, repeats)
        if rank == 0:
            Path(out, "two.json").write_text(json.dumps(found))
    finally:
        world.leave()


def step_times(project_file: str, world, steps: int, block: int) -> dict:
    """The engine's training step (`_Fit.step`), with the gradient exchange and without it (`no_sync`)."""
    from engine import project as projects
    from engine.train.loop import _Fit

    f = _Fit(projects.load(project_file), [], None, "", allow_cache=False, world=world)
    try:
        f.setup()
        f.state.model.train()
        x, y, _ = next(iter(_batches(f)))
        times: dict[str, list[float]] = {"sync": [], "no_sync": []}
        for b in range(2 * steps // block):
            kind = ("sync", "no_sync", "no_sync", "sync")[b % 4]  # blocks in ABBA order
            for _ in range(block):
                world.any(False)  # line the ranks up before each timed step
                t0 = time.perf_counter()
                if kind == "sync":
                    f.step(x, y)
                else:
                    with f.trained.no_sync():
                        f.step(x, y)
                times[kind].append(time.perf_counter() - t0)
        params = sum(p.numel() for p in f.state.model.parameters() if p.requires_grad)
        return {"times": times, "params": params, "batch": len(y)}
    finally:
        f.close()


def _batches(f):
    from engine.train.steps import batches

    return batches(f.train_loader)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--preset", default="full")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-per-class", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=24)
    args = ap.parse_args()

    from engine import project as projects
    from engine.distributed.world import World

    print(machine())
    print("note: this machine's 2 cores are shared with other jobs; 2 processes share them too (gloo on the CPU)")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_image_folder(base / "train", 5, args.train_per_class, args.size + 16, seed=1)
        write_image_folder(base / "val", 5, 8, args.size + 16, seed=2)
        project = engine_project(base, args.arch, args.size, args.preset, epochs=args.epochs, batch_size=args.batch)
        project_file, cache_file = base / "p.thaw.toml", base / "cached.thaw.toml"
        projects.save(project, project_file)
        project.set("freeze.preset", "feature_extraction")
        projects.save(project, cache_file)

        kinds = {"1 process, 2 threads": (1, 2), "1 process, 1 thread": (1, 1), "2 processes, 1 thread each": (2, 1)}
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        for r in range(args.repeats):
            for k in (list(kinds) if r % 2 == 0 else list(kinds)[::-1]):
                runs[k].append(cli_run(project_file, base / f"run-{len(runs[k])}-{kinds[k][0]}-{kinds[k][1]}",
                                       *kinds[k]))
        rows = [[k, median([x["ips"] for x in runs[k]]), median([x["wall"] for x in runs[k]]),
                 median([x["acc"] for x in runs[k]])] for k in kinds]
        print(f"\n{args.arch} at {args.size} px, preset {args.preset}, {5 * args.train_per_class} training images, "
              f"{args.epochs} epochs, batch {args.batch} (one step over all processes), {args.repeats} runs each")
        print(table(["run", "images/s (training)", "wall s (incl. start-up)", "best val acc"], rows))

        torch.set_num_threads(1)
        one = cache_times(str(cache_file), World(), args.repeats)
        mp.spawn(in_two, args=(str(project_file), str(cache_file), args.steps, 4, args.repeats, tmp), nprocs=2,
                 join=True)
        two = json.loads((base / "two.json").read_text())
        steps = two
    sync, no_sync = median(steps["times"]["sync"]), median(steps["times"]["no_sync"])
    share = 1 - no_sync / sync
    print(f"\ntraining step on 2 processes ({steps['batch']} images each, {steps['params']:,} trainable parameters "
          f"= {steps['params'] * 4 / 2**20:.1f} MiB of gradients exchanged per step)")
    print(table(["step", "median s"], [["with the gradient exchange", sync], ["without (no_sync)", no_sync]]))
    print(f"\nfeature cache of {two['cache']['bytes'] / 2**20:.2f} MiB ({args.arch}, preset feature_extraction)")
    print(table(["processes", "building the cache s", "of which the exchange s"],
                [[1, one["cache"], 0.0], [2, two["cache"]["cache"], two["cache"]["exchange"]]]))
    ratio, ratio1 = rows[2][1] / rows[0][1], rows[2][1] / rows[1][1]
    print(f"\nheadline: 2 processes / 1 process, training images/s = {ratio:.2f}x (1 process with 2 threads), "
          f"{ratio1:.2f}x (with 1 thread) on this CPU (gloo); gradient exchange = {share:.0%} of a distributed step; "
          "scaling efficiency on several GPUs: not measured (no GPU here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
