"""CSV lists of images: which row is a header, which columns hold the path and the label, Windows paths, and
each image once.

A first row is a header when none of its fields names a file and its first field does not look like an image
path (``filename,category``, ``path,label``); the path column is the one whose first value names a file, the
label column the one after it (else the one before). A path with backslashes that is not found is tried with
slashes. An image listed twice (by its resolved path) is used once, so a split by image can never put it in
training and validation both; listed with two labels, it is refused.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DataError


@dataclass
class Listing:
    """A CSV list read: (path, label) once per image, in the list's order, and what the reading decided."""

    entries: list[tuple[Path, str]]
    notes: list[str] = field(default_factory=list)  # which columns were used, how many duplicates were dropped


def list_path(csv_path: Path, text: str) -> Path:
    """A listed path as a file: relative to the list's folder, `~` expanded, backslashes tried as separators."""
    p = Path(os.path.expanduser(text))
    p = p if p.is_absolute() else csv_path.parent / p
    if "\\" in text and not p.exists():
        alt = Path(os.path.expanduser(text.replace("\\", "/")))
        alt = alt if alt.is_absolute() else csv_path.parent / alt
        if alt.exists():
            return alt
    return p


def _read_rows(csv_path: Path) -> list[list[str]]:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
            return [[c.strip() for c in r] for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, csv.Error) as exc:
        raise DataError(f"cannot read CSV list {csv_path}: {exc}") from None


def _columns(csv_path: Path, rows: list[list[str]], extensions: Collection[str]) -> tuple[list[str] | None, int, int]:
    """(header or None, path column, label column)."""
    first = rows[0]
    names_file = [bool(c) and list_path(csv_path, c).is_file() for c in first]
    header = None
    if not any(names_file) and Path(first[0].replace("\\", "/")).suffix.lower() not in extensions and len(rows) > 1:
        header, first = first, rows[1]
        names_file = [bool(c) and list_path(csv_path, c).is_file() for c in first]
    path_col = names_file.index(True) if any(names_file) else 0
    width = len(header) if header is not None else len(first)
    label_col = path_col + 1 if path_col + 1 < width or path_col == 0 else path_col - 1
    return header, path_col, label_col


def read_list(csv_path: Path, extensions: Collection[str]) -> Listing:
    """The images a CSV list names with their labels; `DataError` for a row without both, or an image listed
    with two labels. Whether each file is a usable image is the scan's to say."""
    rows = _read_rows(csv_path)
    if not rows:
        return Listing([])
    header, path_col, label_col = _columns(csv_path, rows, extensions)
    notes = []
    if header is not None:
        rows = rows[1:]
        def col(i: int) -> str:
            return repr(header[i]) if i < len(header) and header[i] else f"{i + 1}"

        if [c.lower() for c in header[:2]] != ["path", "label"]:
            notes.append(f"{csv_path.name}: the first row is a header ({','.join(header)}); image paths from column "
                         f"{col(path_col)}, labels from column {col(label_col)}")
    elif (path_col, label_col) != (0, 1):
        notes.append(f"{csv_path.name}: image paths from column {path_col + 1}, labels from column {label_col + 1}")
    entries: list[tuple[Path, str]] = []
    seen: dict[str, tuple[int, str]] = {}
    duplicates = 0
    start = 2 if header is not None else 1
    for i, row in enumerate(rows, start=start):
        need = max(path_col, label_col)
        if len(row) <= need or not row[path_col] or not row[label_col]:
            raise DataError(f"{csv_path}, row {i}: expected an image path in column {path_col + 1} and a label in "
                            f"column {label_col + 1}, got {','.join(row)!r}")
        p, label = list_path(csv_path, row[path_col]), row[label_col]
        key = os.path.realpath(p)
        if key in seen:
            row0, label0 = seen[key]
            if label0 != label:
                raise DataError(f"{csv_path}: {row[path_col]} is listed twice with different labels ({label0!r} "
                                f"in row {row0}, {label!r} in row {i}); an image has one class: remove one row")
            duplicates += 1
            continue
        seen[key] = (i, label)
        entries.append((p, label))
    if duplicates:
        notes.append(f"{csv_path.name} lists {duplicates} row(s) again for an image it already lists: each image "
                     "is used once")
    return Listing(entries, notes)
