"""``python main.py train PROJECT --nproc-per-node N``: the same command, run by N processes under torchrun.

PyTorch's own launcher (`torch.distributed.run`, the elastic agent) runs in this process and starts the
workers, each ``python -u main.py train PROJECT ...`` with torchrun's environment (WORLD_SIZE, RANK,
LOCAL_RANK); Thaw adds no launcher of its own. On one machine the rendezvous is torchrun's ``--standalone``; on
several, each machine runs the same command with its ``--node-rank`` and the ``--rdzv-endpoint`` HOST:PORT of
machine 0, which hosts the rendezvous (torchrun's static rendezvous).

Ctrl-C or SIGTERM reaches the agent, which passes it on to the workers: they stop after the same batch, rank 0
saves, and the agent waits for them (30 s, then it kills them). When a worker fails, the agent stops the others;
of the failures the ranks wrote (`engine.distributed.worker.record`), the first cause is said, once.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.device import pick_device
from engine.distributed.ddp import per_rank_batch
from engine.distributed.worker import LAUNCHED
from engine.distributed.world import World
from engine.errors import ThawError

MAIN_SCRIPT = Path(__file__).resolve().parents[2] / "main.py"
STOPPED = 130


@dataclass(frozen=True)
class Launch:
    """How many processes, on how many machines, and which machine this is."""

    nproc_per_node: int
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = ""  # HOST:PORT of machine 0, for several machines

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def check(self) -> None:
        """`ThawError` (exit 2, nothing started) for settings torchrun could not run."""
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ThawError("--nproc-per-node and --nnodes must be at least 1")
        if not 0 <= self.node_rank < self.nnodes:
            raise ThawError(f"--node-rank {self.node_rank} must be from 0 to {self.nnodes - 1} (one per machine)")
        if self.nnodes > 1 and not re.fullmatch(r"[^\s:]+:\d{1,5}", self.rdzv_endpoint):
            raise ThawError("several machines need --rdzv-endpoint HOST:PORT: machine 0's address and a free port "
                            "(e.g. 10.0.0.1:29400), the same on every machine")

    def flags(self, node_rank: int | None = None) -> list[str]:
        """The train command's flags for this launch (for machine `node_rank`, this one's by default)."""
        out = ["--nproc-per-node", str(self.nproc_per_node)]
        if self.nnodes > 1:
            rank = self.node_rank if node_rank is None else node_rank
            out += ["--nnodes", str(self.nnodes), "--node-rank", str(rank), "--rdzv-endpoint", self.rdzv_endpoint]
        return out

    def torchrun_args(self) -> list[str]:
        if self.nnodes == 1 and not self.rdzv_endpoint:
            return ["--standalone", "--nnodes", "1", "--nproc-per-node", str(self.nproc_per_node)]
        return ["--nnodes", str(self.nnodes), "--node-rank", str(self.node_rank), "--rdzv-backend", "static",
                "--rdzv-endpoint", self.rdzv_endpoint, "--nproc-per-node", str(self.nproc_per_node)]


def local_gpus() -> int:
    """CUDA devices on this machine: one process each is the usual launch."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def backend(project: Any) -> str:
    """The process group's backend for the project's device: NCCL on CUDA, gloo on the CPU."""
    return World.backend_for(pick_device(project.train.device))


def check_project(project: Any, launch: Launch) -> None:
    """Before anything starts: the launch, the device and the batch size fit (`ThawError`, exit 2)."""
    launch.check()
    backend(project)
    per_rank_batch(project.train.batch_size, World(size=launch.world_size))


def train_command(project_file: str | os.PathLike, launch: Launch, *, out: str | os.PathLike | None = None,
                  node_rank: int | None = None, python: str = sys.executable) -> list[str]:
    """The command that runs `project_file` with `launch` on machine `node_rank` (this one by default)."""
    cmd = [python, str(MAIN_SCRIPT), "train", str(project_file)]
    if out is not None:
        cmd += ["--out", str(out)]
    return cmd + launch.flags(node_rank)


def worker_argv(project: str, out: str | None, resume: str | None, overrides: list[str]) -> list[str]:
    """The train command each worker runs: the launcher's own, without the launch's flags, paths absolute."""
    argv = ["train", str(Path(project).expanduser().absolute())]
    if out:
        argv += ["--out", str(Path(out).expanduser().absolute())]
    if resume:
        argv += ["--resume", str(Path(resume).expanduser().absolute())]
    for o in overrides:
        argv += ["--set", o]
    return argv


def first_failure(failures: dict[int, Any]) -> tuple[int, str, int]:
    """(rank, message, exit status) of the failure to tell the person about, among torchrun's `failures`
    (`ProcessFailure` by global rank): the first cause a rank recorded, else the first rank ended by a signal
    or without a word, else the first consequence."""
    def order(item: tuple[int, Any]) -> tuple[int, float]:
        rank, f = item
        thaw = f.error_file_data.get("thaw") if isinstance(f.error_file_data, dict) else None
        if isinstance(thaw, dict):
            return (0 if thaw.get("cause") else 2), float(thaw.get("time", f.timestamp))
        return 1, float(f.timestamp)

    rank, f = min(failures.items(), key=order)
    thaw = f.error_file_data.get("thaw") if isinstance(f.error_file_data, dict) else None
    if isinstance(thaw, dict):
        return rank, str(f.message), int(thaw.get("exit", 1))
    if f.exitcode < 0:
        return rank, f"rank {rank} was ended by {f.signal_name()} (process {f.pid})", 1
    return rank, f"rank {rank} ended with exit status {f.exitcode} without saying why (process {f.pid})", 1


def _quiet_torchrun() -> None:
    """torchrun's log (its shutdown steps, each worker's exit) is for its developers; Thaw says what matters."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def run(launch: Launch, argv: list[str]) -> tuple[int, str | None]:
    """Run the train command `argv` (`worker_argv`) under torchrun in this process, as `launch` says, until
    every worker has ended: (exit status, the one error message or None)."""
    launch.check()
    import torch.distributed.run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    _quiet_torchrun()
    env = {LAUNCHED: "1",  # each worker's own threads share this machine's cores (torchrun would use 1)
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1)
                                                                            // launch.nproc_per_node)),
           "PYTHONPATH": os.pathsep.join(p for p in (str(MAIN_SCRIPT.parent), os.environ.get("PYTHONPATH")) if p)}
    before_env = {k: os.environ.get(k) for k in (*env, "TORCHELASTIC_SIGNALS_TO_HANDLE")}
    handled = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n)]
    before_signals = {s: signal.getsignal(s) for s in handled}  # torchrun's agent takes these over
    os.environ.update(env)
    try:
        torchrun.run(torchrun.parse_args([*launch.torchrun_args(), str(MAIN_SCRIPT), *argv]))
    except SignalException:  # the workers had the signal too: they stopped and rank 0 saved
        return STOPPED, None
    except ChildFailedError as exc:
        if all(f.exitcode == STOPPED for f in exc.failures.values()):  # a stop asked of a worker: all saved
            return STOPPED, None
        _rank, message, status = first_failure(exc.failures)
        return status, (None if status == STOPPED else message)
    except Exception as exc:  # noqa: BLE001 - torchrun itself failed: the rendezvous, a port taken
        return 1, f"torchrun could not run the workers: {type(exc).__name__}: {exc}"
    finally:
        for k, v in before_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for s, handler in before_signals.items():
            signal.signal(s, handler)
    return 0, None
