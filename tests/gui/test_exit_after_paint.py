"""THAW_EXIT_AFTER_PAINT=1 (for bench/startup.py): the real launch paints the demo window and quits by itself."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_main_quits_after_first_paint(tmp_path):
    env = {**os.environ, "THAW_EXIT_AFTER_PAINT": "1", "QT_QPA_PLATFORM": "offscreen",
           "THAW_DATA_DIR": str(tmp_path / "data"), "TORCH_HOME": str(tmp_path / "torch"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "data" / "demos").is_dir()  # the demo project was loaded before the paint
