"""Pretrained weights "published" for download and import tests: a real HTTP server on 127.0.0.1 serving a folder
slowly enough for progress to show, and torchvision's URL of an architecture injected so that its file name (whose
hex digits are the start of the file's SHA-256) names a file the test made."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SlowHandler(http.server.SimpleHTTPRequestHandler):
    """Sends files in 256 kB pieces 20 ms apart (a slow link), and logs nothing."""

    def copyfile(self, source, outputfile):
        with contextlib.suppress(ConnectionError):  # a cancelled download closes the connection
            while piece := source.read(1 << 18):
                outputfile.write(piece)
                time.sleep(0.02)

    def log_message(self, *args):
        pass


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """Serve `folder` on a free port of 127.0.0.1; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            lambda *a, **k: SlowHandler(*a, directory=str(folder), **k))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def weights_file(folder: Path, model=None, name: str = "download.pth") -> tuple[Path, str]:
    """A state dict (squeezenet1_1's unless `model` is given) saved with torch.save; (path, its SHA-256)."""
    import torch
    from torchvision.models import squeezenet1_1

    torch.manual_seed(4)
    path = folder / name
    torch.save((model or squeezenet1_1()).state_dict(), path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def publish(monkeypatch, arch: str, base: str, file_name: str) -> None:
    """torchvision's URL for `arch`, as if it published `file_name` at `base` (other architectures keep theirs)."""
    from engine.model import zoo

    real = zoo.default_weights_url
    monkeypatch.setattr(zoo, "default_weights_url", lambda a: f"{base}/{file_name}" if a == arch else real(a))


def serve_published(monkeypatch, arch: str, base: str, served: Path, model=None) -> str:
    """A state dict served from `served` at `base` under the name torchvision gives such a file (its hash in
    the name), and `arch`'s URL pointing there; returns the file name."""
    path, digest = weights_file(served, model)
    name = f"{arch}-{digest[:8]}.pth"
    path.rename(served / name)
    publish(monkeypatch, arch, base, name)
    return name
