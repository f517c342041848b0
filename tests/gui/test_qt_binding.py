"""The installed Qt binding must keep Python's reference counts straight when signals are emitted.

PySide6 6.12.0 loses a reference to True/False/None on some emissions and aborts the process after a
while ("Fatal Python error: bool_dealloc"), which would kill a long training run with live plots.
"""

import subprocess
import sys

CODE = """
import sys
from PySide6.QtCore import QObject, Signal

class Source(QObject):
    number = Signal(int)
    anything = Signal(object)

source = Source()
source.number.connect(lambda n: None)
source.anything.connect(lambda x: None)
before = sys.getrefcount(None), sys.getrefcount(True)
for i in range(20000):
    source.number.emit(i)
    source.anything.emit(None)
    source.anything.emit(True)
after = sys.getrefcount(None), sys.getrefcount(True)
assert abs(after[0] - before[0]) < 100 and abs(after[1] - before[1]) < 100, (before, after)
print("ok")
"""


def test_signal_emission_keeps_reference_counts():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
