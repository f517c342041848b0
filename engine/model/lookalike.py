"""Which of the zoo's architectures a set of weights belongs to, when it is not the one the project names.

A weights file that does not fit is most often another architecture's ("these look like resnet50 weights"). The
answer compares the file's tensor names and shapes, the classifier left out (a fine-tune has its own), with each
architecture's. Building every architecture to know its tensors takes seconds, so the fingerprints are kept
in Thaw's data folder, one file per torchvision version, and only the families whose top-level modules are the
file's are looked at.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.io.atomic import write_text_atomic
from engine.io.locations import RESOURCES, data_dir
from engine.model.modpath import under


def _backbone(shapes: Mapping[str, tuple[int, ...]], classifier: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in shapes.items() if not under(k, classifier) and not k.endswith("num_batches_tracked")}


def _digest(backbone: Mapping[str, tuple[int, ...]]) -> str:
    return hashlib.sha1(json.dumps(sorted((k, list(v)) for k, v in backbone.items())).encode()).hexdigest()


def _top(backbone: Mapping[str, Any]) -> list[str]:
    return sorted({k.split(".", 1)[0] for k in backbone})


def _file_name() -> str:
    import torchvision

    return f"architecture-fingerprints-torchvision-{torchvision.__version__.split('+')[0]}.json"


def _index_file() -> Path:
    return data_dir() / "cache" / _file_name()


@lru_cache(maxsize=1)
def _stored() -> dict[str, dict[str, Any]]:
    """The fingerprints known so far: shipped with Thaw for its torchvision version, and those this machine
    computed (for another version)."""
    stored: dict[str, dict[str, Any]] = {}
    for path in (RESOURCES / _file_name(), _index_file()):
        with contextlib.suppress(OSError, ValueError):
            stored.update(json.loads(path.read_text(encoding="utf-8")))
    return stored


def fingerprint(arch: str) -> dict[str, Any]:
    """`arch`'s backbone: its top-level module names, classifier paths and a digest of its tensor names and
    shapes; computed once per machine and torchvision version."""
    stored = _stored()
    if arch not in stored:
        from engine.model.zoo import skeleton_facts

        facts = skeleton_facts(arch)
        backbone = _backbone(facts.shapes, facts.classifier_paths)
        stored[arch] = {"top": _top(backbone), "classifier": list(facts.classifier_paths), "digest": _digest(backbone)}
        with contextlib.suppress(OSError):  # a read-only data folder: computed again next time
            write_text_atomic(_index_file(), json.dumps(stored, indent=0, sort_keys=True))
    return stored[arch]


def _matches(found: Mapping[str, tuple[int, ...]], arch: str) -> bool:
    fp = fingerprint(arch)
    return _digest(_backbone(found, tuple(fp["classifier"]))) == fp["digest"]


def lookalike(found: Mapping[str, tuple[int, ...]], exclude: str = "") -> str | None:
    """The torchvision architecture (other than `exclude`) whose backbone tensors are exactly `found`'s, by
    name and shape; None when none is. Families whose top-level modules differ from the file's are skipped
    after a look at one member."""
    from engine.model.zoo import DEMO_ARCH, family, list_architectures

    families: dict[str, list[str]] = {}
    for arch in list_architectures():
        if arch != DEMO_ARCH:
            families.setdefault(family(arch), []).append(arch)
    for members in families.values():
        first = fingerprint(members[0])
        if _top(_backbone(found, tuple(first["classifier"]))) != first["top"]:
            continue
        hit = next((a for a in members if a != exclude and _matches(found, a)), None)
        if hit:
            return hit
    return None


if __name__ == "__main__":
    from engine.model.zoo import DEMO_ARCH, list_architectures

    table = {a: fingerprint(a) for a in list_architectures() if a != DEMO_ARCH}
    write_text_atomic(RESOURCES / _file_name(), json.dumps(table, indent=0, sort_keys=True) + "\n")
    print(f"wrote {RESOURCES / _file_name()} ({len(table)} architectures)")
