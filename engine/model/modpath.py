"""Dotted module paths ("layer4.1.conv2"; "" is the root): joining them and asking what lies under what."""

from __future__ import annotations

from collections.abc import Iterable


def join(prefix: str, name: str) -> str:
    """The path of child `name` of the module at `prefix`."""
    return f"{prefix}.{name}" if prefix else name


def under(path: str, roots: Iterable[str]) -> bool:
    """True when `path` is one of `roots` or lies inside one of them."""
    return any(path == r or path.startswith(r + ".") for r in roots)


def is_ancestor(path: str, of: Iterable[str]) -> bool:
    """True when `path` strictly contains one of the paths in `of` (the root contains every other path)."""
    return any(p != path and (path == "" or p.startswith(path + ".")) for p in of)
