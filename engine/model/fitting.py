"""A weights file's tensors under the names a model uses, and why they do not fit when they do not.

Shared by the preflight (`zoo.weights_problem`, from a file's header) and the build (`zoo.build_model`), so
both say the same: the same renaming, the same message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.errors import WeightsError
from engine.io.weight_formats import conform
from engine.io.weights import fit_problems, misfit_message, read_shapes

# Old DenseNet checkpoints name 'norm.1' what the current modules call 'norm1' (as torchvision remaps).
_DENSENET_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def conformed(family: str, found: dict[str, Any], own: Mapping[str, Any], source: str,
              notes: list[str]) -> dict[str, Any]:
    """A file's tensors (or shapes) under the names the model (of `family`, with `own`'s names) uses: a training
    wrapper's prefix removed where that makes more keys match (`weight_formats.conform`), old DenseNet names
    renamed; what was done appended to `notes`."""
    state, said = conform(_renamed(family, found), own, source)
    notes += said
    return state


def _renamed(family: str, state: dict[str, Any]) -> dict[str, Any]:
    if family != "densenet":
        return state
    renamed = {}
    for key, value in state.items():
        m = _DENSENET_KEY.match(key)
        renamed[m.group(1) + m.group(2) if m else key] = value
    return renamed


def misfit(arch: str, source: str, own: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]],
           tolerate: tuple[str, ...]) -> str | None:
    """Why tensors of these shapes do not fit `arch` (None when they do), naming the architecture they fit
    when it is another one of the zoo's."""
    problems, _ = fit_problems(own, found, tolerate)
    if not problems:
        return None
    from engine.model.lookalike import lookalike

    return misfit_message(source, problems, own, found, lookalike(found, exclude=arch))


def file_shapes(path: Path) -> dict[str, tuple[int, ...]] | WeightsError:
    """The tensor shapes of a weights file (`read_shapes`), or the error saying why there are none; read once per
    version of the file (its size and modification time)."""
    st = path.stat() if path.is_file() else None
    return _file_shapes(str(path), (st.st_size, st.st_mtime_ns) if st else (0, 0))


@lru_cache(maxsize=32)
def _file_shapes(path: str | os.PathLike, _stamp: tuple[int, int]) -> dict[str, tuple[int, ...]] | WeightsError:
    try:
        return read_shapes(path)
    except WeightsError as exc:
        return exc
