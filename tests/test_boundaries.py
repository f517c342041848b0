"""The engine must run headless: importing it never pulls in Qt or pyqtgraph."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_engine_imports_without_qt():
    code = (
        "import importlib, pkgutil, sys, engine\n"
        "for m in pkgutil.iter_modules(engine.__path__):\n"
        "    importlib.import_module('engine.' + m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6', 'gui')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_no_qt_import_statements_in_engine():
    for path in (ROOT / "engine").rglob("*.py"):
        text = path.read_text()
        for banned in ("PySide6", "pyqtgraph", "from gui", "import gui"):
            assert banned not in text, f"{path} mentions {banned}"
