"""Files fetched from the network, only when a person asks, and files checked by their SHA-256.

A download goes to a temporary file beside its target and is renamed only once its hash is checked, so the
target is either absent or complete and right: a cancel, a dropped connection or a wrong hash leaves no file.
Progress (bytes done, total, speed, time left) is reported about ten times a second; `stop` ends it between
blocks.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ThawError

BLOCK = 1 << 20
TIMEOUT_S = 30.0
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")  # torch hub's convention: name-<first hex digits of SHA-256>.ext


class Cancelled(ThawError):
    """The person stopped a download or a check; nothing was kept."""


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None      # None when the server does not say
    bytes_per_second: float
    eta_seconds: float | None


def hash_prefix(file_name: str) -> str | None:
    """The SHA-256 prefix a torch hub file name carries ("resnet18-f37072fd.pth" -> "f37072fd"), if any."""
    m = _HASH_IN_NAME.search(file_name)
    return m.group(1) if m else None


class _Meter:
    """Calls `report` with a `Progress` at most every `every` seconds (and always for the last block)."""

    def __init__(self, total: int | None, report: Callable[[Progress], None] | None, every: float = 0.1) -> None:
        self.total, self.report, self.every = total, report, every
        self.start = self.last = time.monotonic()
        self.done = 0

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        finished = self.total is not None and self.done >= self.total
        if self.report is None or (now - self.last < self.every and not finished):
            return
        self.last = now
        speed = self.done / max(now - self.start, 1e-6)
        eta = (self.total - self.done) / speed if self.total and speed > 0 else None
        self.report(Progress(self.done, self.total, speed, eta))


def _check_stop(stop: threading.Event | None, what: str) -> None:
    if stop is not None and stop.is_set():
        raise Cancelled(f"{what} cancelled; nothing was kept")


def sha256_file(path: str | os.PathLike, progress: Callable[[Progress], None] | None = None,
                stop: threading.Event | None = None) -> str:
    """The file's SHA-256 in hex, read a block at a time (a 2.5 GB file takes seconds: progress and stop)."""
    path = Path(path)
    digest = hashlib.sha256()
    meter = _Meter(path.stat().st_size, progress)
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            _check_stop(stop, f"checking {path.name}")
            digest.update(block)
            meter.add(len(block))
    return digest.hexdigest()


def download(url: str, target: str | os.PathLike, *, expected_prefix: str | None = None,
             check: Callable[[Path], None] | None = None, progress: Callable[[Progress], None] | None = None,
             stop: threading.Event | None = None) -> Path:
    """Fetch `url` into `target`: through a temporary file in the same folder, its SHA-256 checked against
    `expected_prefix` and `check(temp_path)` run (raising to refuse it) before the rename. `Cancelled` when
    `stop` is set; `ThawError` for the network (offline, not found) and a wrong hash. A temporary file left by
    a process that died is replaced: a download always starts over cleanly."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    part.unlink(missing_ok=True)
    try:
        try:
            response = urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 (the person's or torch's URL)
        except urllib.error.HTTPError as exc:
            raise ThawError(f"{url} answered {exc.code} {exc.reason}: is the address right?") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ThawError(f"cannot reach {url} ({reason}): is this machine offline?") from None
        with response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            meter = _Meter(int(length) if length and length.isdigit() else None, progress)
            digest = hashlib.sha256()
            while True:
                _check_stop(stop, f"downloading {target.name}")
                try:
                    block = response.read(BLOCK)
                except OSError as exc:
                    raise ThawError(f"the download of {url} broke off after {meter.done:,} bytes ({exc}); "
                                    "start it again") from None
                if not block:
                    break
                out.write(block)
                digest.update(block)
                meter.add(len(block))
            out.flush()
            os.fsync(out.fileno())
        if meter.total is not None and meter.done != meter.total:
            raise ThawError(f"the download of {url} ended after {meter.done:,} of {meter.total:,} bytes; start it again")
        got = digest.hexdigest()
        if expected_prefix and not got.startswith(expected_prefix):
            raise ThawError(f"the file downloaded from {url} has SHA-256 {got[:len(expected_prefix)]}..., not "
                            f"{expected_prefix}... as its name says: a damaged download or the wrong file; nothing "
                            "was kept")
        if check is not None:
            check(part)
        os.replace(part, target)
        return target
    finally:
        part.unlink(missing_ok=True)
