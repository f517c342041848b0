"""Running the project from the window (a mixin of `MainWindow`): Start, Pause, Resume, Stop, a run continued,
the run in several processes, and the set-up read-only while a run goes. The run itself is the `RunController`'s
(`runs`); what the window shows of it is read through it."""

from __future__ import annotations

from pathlib import Path

from gui.run import launcher


class Running:
    """For a window with `runs` (a `RunController`), `project`, `problems`, `update_start_state`, `recheck`,
    `show_error`, `setup_panels`, `freeze_panel`, `setup_dock` and `_refresh_recent_menu`."""

    # ------------------------------------------------------------------ the run, as the controller has it

    summary = property(lambda self: self.runs.summary)
    progress = property(lambda self: self.runs.progress)
    device_label = property(lambda self: self.runs.device_label)
    speed_label = property(lambda self: self.runs.speed_label)
    run = property(lambda self: self.runs.run)
    last_result = property(lambda self: self.runs.last_result)
    last_error = property(lambda self: self.runs.last_error)

    # ------------------------------------------------------------------ running

    def is_running(self) -> bool:
        return self.runs.is_running()

    def start(self) -> bool:
        """Train the project in a new run folder."""
        return self._launch(None, self.problems())

    def processes_action_text(self) -> str:
        return launcher.action_text()

    def run_in_processes(self) -> bool:
        """Run > Run in Several Processes... (or Run on N GPUs...): the command line under torchrun."""
        return launcher.run_in_processes(self)

    def launch_resume(self, run_dir: str | Path) -> bool:
        """Continue the run in `run_dir` (its own project is shown); the engine scans its data itself."""
        return self._launch(run_dir, self.problems(wait_for_scan=False))

    def _launch(self, resume_dir: str | Path | None, found: list[str]) -> bool:
        if self.is_running():
            return False
        if found:
            self.update_start_state()
            self.show_error("Cannot start", "\n".join(found))
            return False
        self.runs.launch(self.project, resume_dir)
        return True

    def pause(self) -> None:
        self.runs.pause()
        self.update_start_state()

    def resume(self) -> None:
        self.runs.resume()
        self.update_start_state()

    def stop(self) -> None:
        self.runs.stop()

    def stop_and_join(self, timeout_ms: int = 30000) -> bool:
        """Stop a run (if any) and wait for its thread; True when no thread is left running."""
        return self.runs.stop_and_join(timeout_ms)

    def _set_locked(self, locked: bool) -> None:
        for panel in self.setup_panels.values():
            panel.set_read_only(locked)
        self.freeze_panel.set_read_only(locked)
        self.setup_dock.setWindowTitle("Set-up (read-only while training)" if locked else "Set-up")
        if locked:
            self.update_start_state()
        else:
            self.recheck()  # files may have changed while it ran
        self._refresh_recent_menu()
