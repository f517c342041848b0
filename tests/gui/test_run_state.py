"""The window says what the run is doing: the banner above the set-up and the progress bar say "paused" while
the loop holds, and "running" again once it goes on."""

from __future__ import annotations

from gui.run.controller import PAUSED, RUNNING


def test_a_paused_run_says_so_above_the_set_up_and_on_the_progress_bar(window, qtbot, project_factory):
    window.set_project(project_factory(classes=("circle", "square"), train__epochs=500, train__batch_size=4,
                                       train__device="cpu"))
    qtbot.waitUntil(lambda: window.start_action.isEnabled(), timeout=30_000)
    assert window.start()
    qtbot.waitUntil(lambda: window.plots.train_loss.n > 0, timeout=120_000)
    assert window.setup_banner.isVisibleTo(window) and window.setup_banner.text() == RUNNING

    with qtbot.waitSignal(window.runs.paused_changed, timeout=10_000) as paused:
        window.pause_action.trigger()
    assert paused.args == [True]
    assert window.setup_banner.text() == PAUSED and window.setup_banner.text().startswith("Training is paused")
    assert window.progress.format().endswith("(paused)") and window.progress.format().count("paused") == 1
    assert window.setup_banner.isVisibleTo(window) and window.freeze_panel.is_read_only()

    with qtbot.waitSignal(window.runs.paused_changed, timeout=10_000) as resumed:
        window.resume_action.trigger()
    assert resumed.args == [False]
    assert window.setup_banner.text() == RUNNING
    assert "paused" not in window.progress.format()
    qtbot.waitUntil(lambda: window.progress.format().startswith("Epoch"), timeout=10_000)

    with qtbot.waitSignal(window.run_finished, timeout=10_000):
        window.stop_action.trigger()
    assert not window.setup_banner.isVisibleTo(window)
    assert window.progress.format().startswith("Stopped after")
