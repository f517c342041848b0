"""The real launch, in a subprocess (bench/startup.py times these): the start page paints before torch is
imported, and `--demo` comes to the main window with the demo loaded."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def launch(tmp_path, mode, *args):
    env = {**os.environ, "THAW_EXIT_AFTER_PAINT": mode, "QT_QPA_PLATFORM": "offscreen",
           "THAW_DATA_DIR": str(tmp_path / "data"), "TORCH_HOME": str(tmp_path / "torch"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHONVERBOSE": "1"}
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)


def test_the_start_page_paints_before_torch_is_imported(tmp_path):
    out = launch(tmp_path, "1")
    assert out.returncode == 0, out.stderr[-2000:]
    # python -v logs each import: torch's own `torch/__init__.py` is not among them by the time of the paint
    assert "import 'gui.start_page'" in out.stderr
    assert not any(line.startswith("import 'torch'") for line in out.stderr.splitlines())


def test_demo_opens_the_main_window_with_the_demo(tmp_path):
    out = launch(tmp_path, "window", "--demo", "inductive")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "data" / "demos" / "digits-5to9").is_dir()  # the demo project was loaded before the paint
