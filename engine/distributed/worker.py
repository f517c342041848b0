"""A torchrun worker's life around the train command: join the process group, train, leave; a failure said
once, naming the rank.

A rank that fails writes what went wrong to the file torchrun gives it (TORCHELASTIC_ERROR_FILE): the message,
its exit status and whether it is a cause or only a consequence of another rank's failure (a collective that
broke because a peer died, or `RankFailed`). The launcher (`engine.distributed.launch`) reads those files and
says the first cause alone; under a bare ``torchrun``, a rank also prints its cause (a consequence stays quiet).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

import torch

from engine.distributed.world import RankFailed, World
from engine.errors import ThawError
from engine.wording import training_failed

LAUNCHED = "THAW_LAUNCHER"  # set by Thaw's launcher for its workers: it reports their failures itself
ERROR_FILE = "TORCHELASTIC_ERROR_FILE"


def describe(exc: BaseException) -> tuple[str, int, bool]:
    """(message, exit status, whether it is a cause) for an exception that ended a rank's training."""
    if isinstance(exc, KeyboardInterrupt):
        return "aborted without saving", 130, True
    if isinstance(exc, RankFailed):
        return str(exc), 2, False
    if isinstance(exc, ThawError):
        return str(exc), 2, True
    if isinstance(exc, torch.distributed.DistError) or "/gloo/" in str(exc):  # gloo says "Connection reset by peer"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"lost the other processes of the run ({first})", 1, False
    if isinstance(exc, torch.OutOfMemoryError):
        first = str(exc).splitlines()[0] if str(exc) else "out of memory"
        return (f"out of memory ({first}); the run folder keeps its last completed epoch: continue it with more "
                "processes (each then takes a smaller share of a step), or start it again with a smaller "
                "train.batch_size"), 1, True
    return training_failed(exc), 1, True


def record(world: World, message: str, status: int, cause: bool, err: TextIO | None = None) -> str:
    """Say a rank's failure: in torchrun's error file for the launcher, and on `err` for a cause under a bare
    torchrun. Returns the message with its rank."""
    said = f"rank {world.rank} of {world.size}: {message}"
    path = os.environ.get(ERROR_FILE)
    if path:
        now = time.time()
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"message": said, "timestamp": int(now),
                       "thaw": {"cause": cause, "exit": status, "time": now}}, f)
    if cause and not os.environ.get(LAUNCHED):
        print(f"error: {said}", file=err or sys.stderr)
    return said


def run(world: World, backend: str, body: Callable[[], int], *, init_method: str = "env://",
        err: TextIO | None = None) -> int:
    """Join the run's process group, run `body` (the command's training; it returns the exit status) and
    leave; anything it raises is said as this rank's failure (`record`) and becomes the exit status."""
    world.join(backend, init_method)
    try:
        return body()
    except BaseException as exc:  # noqa: BLE001 - every way a rank ends is said once and becomes its status
        message, status, cause = describe(exc)
        record(world, message, status, cause, err)
        return status
    finally:
        world.leave()
