"""Getting an architecture's pretrained weights onto this machine, for a workstation that is offline most of
the time: import a file downloaded elsewhere, or download it now, when the person asks (never by itself).

Either way the file lands in the torch hub cache (`zoo.checkpoints_dir()`) under torchvision's own name,
e.g. ``resnet18-f37072fd.pth``, where Thaw and torchvision look for it. The hex digits in that name are the
start of the file's SHA-256: a file whose hash does not start with them is another file (another
architecture's, a damaged download) and is refused, as is one whose tensors do not fit the architecture.
``THAW_WEIGHTS_MIRROR`` names a mirror (a base URL that serves the same file names) to download from instead
of download.pytorch.org.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from engine.errors import ProjectError, WeightsError
from engine.io.atomic import atomic_path
from engine.io.download import Progress, download, hash_prefix, sha256_file
from engine.model import zoo

MIRROR_ENV = "THAW_WEIGHTS_MIRROR"


def _torchvision_arch(arch: str) -> None:
    if arch == zoo.DEMO_ARCH or not zoo.is_known_arch(arch) or zoo.is_timm(arch):
        raise ProjectError("model.arch", f"{arch} has no torchvision weights file to fetch or import; "
                                         "torchvision architectures do (see `python main.py models`)")


def url(arch: str) -> str:
    """Where `arch`'s pretrained file is downloaded from: the mirror when one is set, else torchvision's URL."""
    _torchvision_arch(arch)
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    name = zoo.pretrained_path(arch).name
    return f"{mirror.rstrip('/')}/{name}" if mirror else zoo.default_weights_url(arch)


def _fits(arch: str, path: Path) -> None:
    """`WeightsError` unless `path` holds `arch`'s full state dict (the pretrained file has nothing less)."""
    problem = zoo.file_problem(arch, path, tolerate=())
    if problem:
        raise WeightsError(problem)


def owner_of(sha256: str) -> str | None:
    """The torchvision architecture whose pretrained file name carries the start of this hash."""
    for arch in zoo.list_architectures():
        if arch != zoo.DEMO_ARCH:
            prefix = hash_prefix(zoo.pretrained_path(arch).name)
            if prefix and sha256.startswith(prefix):
                return arch
    return None


def import_file(path: str | os.PathLike, arch: str | None = None,
                progress: Callable[[Progress], None] | None = None,
                stop: threading.Event | None = None) -> tuple[str, Path]:
    """Copy a downloaded pretrained file into the torch hub cache under its proper name; (arch, where it is).

    The architecture is the one whose file name carries the start of the file's SHA-256 (`arch`, when given,
    must be that one). Refused, with nothing copied: a file whose hash is no architecture's, or another
    architecture's than `arch`, or whose tensors do not fit. A file already there is left as it is."""
    source = Path(path).expanduser()
    if source.is_dir():
        raise WeightsError(f"{source} is a folder; choose the downloaded file inside it (e.g. resnet18-f37072fd.pth)")
    if not source.is_file():
        raise WeightsError(f"{source} does not exist")
    if arch is not None:
        _torchvision_arch(arch)
    digest = sha256_file(source, progress, stop)
    owner = owner_of(digest)
    if arch is not None and owner != arch:
        expected = zoo.pretrained_path(arch).name
        whose = f"; it is {owner}'s ({zoo.pretrained_path(owner).name})" if owner else ""
        raise WeightsError(f"{source.name} is not {arch}'s pretrained file: its SHA-256 starts with {digest[:8]}, "
                           f"{expected}'s with {hash_prefix(expected)}{whose}. Nothing was copied")
    if owner is None:
        raise WeightsError(f"{source.name} is no torchvision architecture's pretrained file: its SHA-256 "
                           f"({digest[:8]}...) is not the start of any of their file names. A damaged download? "
                           "A weights file of your own is chosen under \"From a file\" instead. Nothing was copied")
    _fits(owner, source)
    target = zoo.pretrained_path(owner)
    if target.is_file() and target.stat().st_size == source.stat().st_size and source.resolve() != target.resolve():
        return owner, target  # the same name means the same hash prefix and size: the same file
    if source.resolve() != target.resolve():
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    return owner, target


def fetch(arch: str, progress: Callable[[Progress], None] | None = None, stop: threading.Event | None = None,
          source: str | None = None) -> Path:
    """Download `arch`'s pretrained file (from `source`, else `url(arch)`) into the torch hub cache, checked by
    its hash and by loading; nothing is left behind when it fails or is cancelled (`download.Cancelled`)."""
    _torchvision_arch(arch)
    target = zoo.pretrained_path(arch)
    return download(source or url(arch), target, expected_prefix=hash_prefix(target.name),
                    check=lambda part: _fits(arch, part), progress=progress, stop=stop)
