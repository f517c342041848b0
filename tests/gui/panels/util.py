"""What every panel test does: show a panel on a fresh project, and type into a field as a person would."""

from __future__ import annotations

from PySide6.QtCore import Qt

from engine.project import Project


def show_panel(qtbot, panel, project: Project | None = None):
    """Show `panel` (bound to `project`, or a new default one) and return (panel, project)."""
    qtbot.addWidget(panel)
    project = Project() if project is None else project
    panel.set_project(project)
    panel.show()
    qtbot.waitExposed(panel)
    return panel, project


def type_into(qtbot, edit, text):
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


def check(panel, sources=None):
    """What the window does after an edit or a scan: ask the engine, show the panel its fields' problems."""
    from engine.preflight import preflight

    found = preflight(panel.project, sources)
    panel.show_problems(found)
    return found
