"""Thaw's PySide6 window: edits a project, runs it through the engine in a QThread, plots live."""
