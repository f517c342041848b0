"""The real app, `main.py` on a project, quit mid-batch: a script that tests/gui/test_quit.py runs in its own
process (`python -m tests.gui.quit_mid_run PROJECT`).

Once the main window can start, it starts the run; after epoch 1 the model's next training batch sleeps
`STUCK_SECONDS` in a forward hook that no stop flag reaches (a kernel that cannot be interrupted). Once that
batch has begun it prints "closing" and closes the window, and "stop and quit" is answered Yes on the real
question box (tests/gui/answers.py). The process must end all the same, long before the batch would.
"""

from __future__ import annotations

import sys
import threading
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

STUCK_SECONDS = 120


def stuck_after_epoch_1(stuck: threading.Event) -> None:
    """The model's training batches after epoch 1 (3 steps: 12 images in batches of 4) sleep `STUCK_SECONDS`."""
    from engine.train import loop

    real = loop.assemble

    def assemble(*args, **kwargs):
        built = real(*args, **kwargs)
        calls = []

        def hold(module, _args):
            if module.training:
                calls.append(1)
                if len(calls) == 4:
                    stuck.set()
                    time.sleep(STUCK_SECONDS)

        built.model.register_forward_pre_hook(hold)
        return built

    loop.assemble = assemble


def main(project: str) -> int:
    import main as entry
    from tests.gui.answers import Answers

    app = QApplication(sys.argv[:1])
    answers = Answers({"button": QMessageBox.StandardButton.Yes, "asked": []})  # noqa: F841 (kept alive)
    stuck = threading.Event()
    stuck_after_epoch_1(stuck)
    started = []

    def step() -> None:
        window = next((w for w in app.topLevelWidgets() if w.objectName() == "mainWindow" and w.isVisible()), None)
        if window is None:
            return
        if not started:
            if window.start_action.isEnabled():
                started.append(window.start())
        elif stuck.is_set():
            timer.stop()
            print("closing", flush=True)
            window.close()

    timer = QTimer()
    timer.timeout.connect(step)
    timer.start(50)
    return entry.main([project])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
