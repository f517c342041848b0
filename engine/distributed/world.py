"""Who this process is in a run, and the collectives Thaw adds to DDP's own, as methods that do nothing in a
single process.

torchrun gives each of its processes WORLD_SIZE, RANK and LOCAL_RANK (`World.from_env`). `World()` (size 1) is
a single process: every collective below returns its input, so the loop calls them unconditionally and a
single-process run does exactly what it did before.

The collectives are small and go through the CPU: a stop agreed after every batch, the batch's figures, the
validation's per-batch rows, rank 0's choices shared (the run folder, the checkpoint to resume), the
feature cache's rows gathered. Under NCCL they use a second group on gloo, so none needs a GPU tensor. Every
collective has a timeout (`timeout_seconds`): a rank that dies or hangs ends the others with an error instead of
a wait without end.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import torch
from torch import nn

from engine.errors import ThawError

T = TypeVar("T")
DEFAULT_TIMEOUT_SECONDS = 600.0  # a collective waits at most this long for the other ranks (THAW_DIST_TIMEOUT)


class RankFailed(ThawError):
    """Another rank failed and told this one (rank 0's error while choosing the run folder, say). The rank that
    failed reports it; this one ends quietly."""

    def __init__(self, rank: int, message: str) -> None:
        self.rank = rank
        super().__init__(f"rank {rank} failed: {message}")


def timeout_seconds(environ: Mapping[str, str] = os.environ) -> float:
    raw = environ.get("THAW_DIST_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ThawError(f"THAW_DIST_TIMEOUT={raw!r}: give the seconds a collective may wait, e.g. 600")
    return value


@dataclass
class World:
    """This process's place among the run's processes (rank 0 is the one that writes the run folder)."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    _group: Any = field(default=None, repr=False, compare=False)  # the gloo group for CPU exchanges (NCCL runs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> World:
        """The world torchrun describes in the environment; a single process where it says nothing."""
        try:
            size = int(environ.get("WORLD_SIZE", "1"))
            rank = int(environ.get("RANK", "0"))
            local_rank = int(environ.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise ThawError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (torchrun sets them)") from None
        if size < 1 or not 0 <= rank < size or local_rank < 0:
            raise ThawError(f"RANK={rank} does not fit WORLD_SIZE={size} (torchrun sets them)")
        return cls(rank=rank, local_rank=local_rank, size=size)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------ joining and leaving

    @staticmethod
    def backend_for(device: torch.device) -> str:
        """NCCL between GPUs, gloo between CPU processes; nothing else runs DDP here."""
        if device.type == "cuda":
            return "nccl"
        if device.type == "cpu":
            return "gloo"
        raise ThawError(f"train.device: {device.type.upper()} cannot train in several processes; use \"cuda\" "
                        "(NCCL) or \"cpu\" (gloo)")

    def place(self, device: torch.device) -> torch.device:
        """This rank's device: its own GPU (LOCAL_RANK) on CUDA, else `device` as it is."""
        if device.type == "cuda" and self.distributed:
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        return device

    def join(self, backend: str, init_method: str = "env://", timeout: float | None = None) -> None:
        """Start the process group (a collective: every rank calls it)."""
        import torch.distributed as dist

        wait = timedelta(seconds=timeout if timeout is not None else timeout_seconds())
        dist.init_process_group(backend, init_method=init_method, rank=self.rank, world_size=self.size, timeout=wait)
        if backend != "gloo":
            self._group = dist.new_group(backend="gloo", timeout=wait)

    def leave(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        self._group = None

    # ------------------------------------------------------------ collectives (inputs returned as they are in one process)

    def _sum(self, values: list[float]) -> list[float]:
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, group=self._group)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on one."""
        return bool(self._sum([float(flag)])[0]) if self.distributed else flag

    def all(self, flag: bool) -> bool:
        """True on every rank when it is True on all."""
        return self._sum([float(flag)])[0] == self.size if self.distributed else flag

    def batch(self, loss: float, correct: int, n: int) -> tuple[float, int, int]:
        """A training batch's figures over every rank's share of it: mean loss, correct, images."""
        if not self.distributed:
            return loss, correct, n
        loss_sum, c, seen = self._sum([loss * n if n else 0.0, float(correct), float(n)])
        return (loss_sum / seen if seen else math.nan), int(c), int(seen)

    def table(self, rows: torch.Tensor) -> torch.Tensor:
        """The sum over ranks of a float64 table in which each rank filled only its own rows (zeros elsewhere):
        every rank's rows, exactly, on every rank."""
        if not self.distributed:
            return rows
        import torch.distributed as dist

        rows = rows.to(torch.float64).clone()
        dist.all_reduce(rows, group=self._group)
        return rows

    def share(self, obj: T) -> T:
        """Rank 0's `obj` on every rank."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self._group)
        return box[0]

    def gather(self, obj: T) -> list[T]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj, group=self._group)
        return out

    def cat(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's rows (any number each), concatenated in rank order, on every rank (on `rows`' device)."""
        if not self.distributed:
            return rows
        import torch.distributed as dist

        counts = [int(c) for c in self.gather(rows.shape[0])]
        cpu = rows.detach().cpu()
        padded = torch.zeros((max(counts), *cpu.shape[1:]), dtype=cpu.dtype)
        padded[: cpu.shape[0]] = cpu
        parts = [torch.empty_like(padded) for _ in range(self.size)]
        dist.all_gather(parts, padded, group=self._group)
        return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)]).to(rows.device)

    def sync_buffers(self, module: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm's running statistics) into every rank's `module`, as DDP does before each
        training forward: evaluation and the checkpoint then see one model."""
        if not self.distributed:
            return
        import torch.distributed as dist
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
        for b in module.buffers():
            groups.setdefault((b.device, b.dtype), []).append(b)
        with torch.no_grad():
            for tensors in groups.values():
                flat = _flatten_dense_tensors(tensors)
                dist.broadcast(flat, src=0)
                for b, synced in zip(tensors, _unflatten_dense_tensors(flat, tensors), strict=True):
                    b.copy_(synced)

    def main_does(self, fn: Callable[[], T]) -> T:
        """`fn()` on rank 0 alone, its result on every rank; if it raises, the other ranks raise `RankFailed`
        (rank 0 raises the error itself)."""
        if not self.distributed:
            return fn()
        if self.is_main:
            try:
                value = fn()
            except BaseException as exc:
                self.share(("failed", str(exc)))
                raise
            return self.share(("ok", value))[1]
        outcome, value = self.share(None)
        if outcome == "failed":
            raise RankFailed(0, value)
        return value
