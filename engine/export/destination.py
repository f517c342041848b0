"""Where a bundle goes, and how it gets there without replacing anything the person owns.

A bundle is built in a hidden folder beside its destination and moved there only once it is complete and
verified: a reader never sees half a bundle. The destination is a new folder, an empty one, or an earlier
Thaw export (its export.json says so and it holds nothing else than a bundle's files), which the new bundle
replaces; anything else is refused, as is a destination inside the run's data. With `zip`, the destination is
one .zip file (an earlier export's zip may be replaced, nothing else).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from engine.errors import ThawError
from engine.io.atomic import atomic_path

REPORT = "export.json"
MARK = "thaw_export"  # the key in export.json that tells an export of Thaw's from any other folder
BUNDLE_NAMES = frozenset({"model.onnx", "model.onnx.data", "model.pt2", "model.safetensors", "labels.json",
                          "preprocessing.json", "signature.json", "README.md", "predict.py", "requirements.txt",
                          "reference", REPORT})


def default_destination(run_dir: Path) -> Path:
    return run_dir / "export"


def check_destination(target: Path, zipped: bool, data_folders: list[Path]) -> Path:
    """The destination as it will be written (``.zip`` added when zipped); `ThawError` when it may not be."""
    target = target.expanduser().absolute()
    if zipped and target.suffix.lower() != ".zip":
        target = target.with_name(target.name + ".zip")
    for data in data_folders:
        if target == data or target.is_relative_to(data):
            raise ThawError(f"{target} is inside the data folder {data}; Thaw never writes there. Choose a "
                            "destination outside it")
    if zipped:
        if target.is_dir():
            raise ThawError(f"{target} is a folder; give a .zip file name for --zip")
        if target.exists() and not _is_export_zip(target):
            raise ThawError(f"{target} exists and is not an earlier Thaw export; choose another name (it is "
                            "not replaced)")
        return target
    if target.exists() and not target.is_dir():
        raise ThawError(f"{target} exists and is not a folder; choose a new folder for the export")
    if target.is_dir() and any(target.iterdir()):
        others = _not_a_bundle(target)
        if others is not None:
            raise ThawError(f"{target} is not empty and is not an earlier Thaw export ({others}); choose a new "
                            "or empty folder: nothing in it is replaced")
    return target


def _not_a_bundle(folder: Path) -> str | None:
    """Why `folder` is not an earlier export that may be replaced, or None when it is one."""
    try:
        report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"it has no readable {REPORT}"
    if not isinstance(report, dict) or MARK not in report:
        return f"its {REPORT} is not Thaw's"
    others = sorted(p.name for p in folder.iterdir() if p.name not in BUNDLE_NAMES)
    if others:
        return f"it also holds {', '.join(others[:5])}{', ...' if len(others) > 5 else ''}"
    return None


def _is_export_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            report = next((n for n in names if n.count("/") == 1 and n.endswith("/" + REPORT)), None)
            return report is not None and MARK in json.loads(z.read(report))
    except (OSError, ValueError, zipfile.BadZipFile, KeyError):
        return False


def staging(target: Path) -> Path:
    """A new hidden folder beside `target` to build the bundle in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.stem}.", suffix=".partial", dir=target.parent))


def place(built: Path, target: Path, zipped: bool) -> None:
    """Move the finished bundle `built` to `target` (replacing an earlier export there), or zip it there; `built`
    is gone afterwards."""
    if zipped:
        with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(built.rglob("*")):
                z.write(path, Path(target.stem) / path.relative_to(built))
        shutil.rmtree(built)
        return
    os.chmod(built, 0o777 & ~_umask())  # mkdtemp made it private; a bundle is for sharing
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(built, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
