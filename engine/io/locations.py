"""Where Thaw keeps its files on this machine: the user's data folder, unless THAW_DATA_DIR says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCES = REPO_ROOT / "resources"


def data_dir() -> Path:
    """Folder for demo data and projects (platformdirs' user data folder; THAW_DATA_DIR overrides it)."""
    override = os.environ.get("THAW_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("Thaw", appauthor=False))
