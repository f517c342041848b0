"""Every control has a stable objectName and an accessible name, and docs/gui-names.md lists them all."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QToolBar

from gui.naming import interactive_widgets

DOC = Path(__file__).resolve().parents[2] / "docs" / "gui-names.md"


def owner(widget) -> str:
    """The nearest enclosing part of Thaw's own (a panel, the checklist, the run summary, the window)."""
    up = widget.parentWidget()
    while up is not None and not type(up).__module__.startswith("gui."):
        up = up.parentWidget()
    return type(up).__name__ if up is not None else "-"


def tables(window) -> tuple[str, str]:
    """The widget table and the action table, as docs/gui-names.md has them."""
    widgets = ["| objectName | accessible name | kind | in |", "|---|---|---|---|"]
    widgets += [f"| `{w.objectName()}` | {w.accessibleName()} | {type(w).__name__} | {owner(w)} |"
                for w in interactive_widgets(window)]
    actions = ["| objectName | text | shortcut |", "|---|---|---|"]
    actions += [f"| `{a.objectName()}` | {a.text().replace('&', '')} | {a.shortcut().toString()} |"
                for a in sorted(window_actions(window), key=lambda a: a.objectName())
                if not a.objectName().startswith("recentProject")]
    return "\n".join(widgets) + "\n", "\n".join(actions) + "\n"


def window_actions(window) -> list[QAction]:
    """The actions of the window's menus (submenus included) and its toolbar."""
    found, menus = [], [a.menu() for a in window.menuBar().actions()]
    while menus:
        for a in menus.pop().actions():
            if a.menu() is not None:
                menus.append(a.menu())
            elif not a.isSeparator():
                found.append(a)
    toolbar = window.findChildren(QToolBar)[0].actions()
    return found + [a for a in toolbar if a.text() and a not in found]  # (widgets in it have no text)


def test_every_control_has_a_unique_name_and_an_accessible_name(window):
    window.plots  # noqa: B018 (made after the first paint otherwise)
    controls = interactive_widgets(window)
    assert len(controls) > 50
    unnamed = [f"{type(w).__name__} in {owner(w)}" for w in controls if not w.objectName() or not w.accessibleName()]
    assert not unnamed
    names = [w.objectName() for w in controls]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    assert all(a.objectName() for a in window_actions(window)), [a.text() for a in window_actions(window)
                                                                  if not a.objectName()]


def test_docs_list_every_name(window):
    window.plots  # noqa: B018
    text = DOC.read_text(encoding="utf-8")
    for expected in tables(window):
        assert expected in text, "docs/gui-names.md is out of date; this table should read:\n\n" + expected


def start_page_table(page) -> str:
    rows = ["| objectName | accessible name | kind |", "|---|---|---|"]
    rows += [f"| `{w.objectName()}` | {w.accessibleName()} | {type(w).__name__} |" for w in interactive_widgets(page)]
    return "\n".join(rows) + "\n"


def assert_named_and_listed(root, what: str, at_least: int) -> None:
    """Every control of `root` (a part shown on its own: the start page, a dialog) is named, and its table is in
    docs/gui-names.md."""
    controls = interactive_widgets(root)
    assert len(controls) >= at_least and all(w.objectName() and w.accessibleName() for w in controls)
    expected = start_page_table(root)
    assert expected in DOC.read_text(encoding="utf-8"), f"docs/gui-names.md: {what}'s table should read:\n\n" \
        + expected


def test_the_start_page_controls_are_named_and_listed(qtbot):
    from gui.start_page import StartPage

    page = StartPage()
    qtbot.addWidget(page)
    assert_named_and_listed(page, "the start page", 5)


def test_the_transfer_study_controls_are_named_and_listed(window):
    window.open_study()
    assert_named_and_listed(window.study, "the transfer study", 9)


def tab_table(window) -> str:
    """The controls of the Results and Runs tabs (made when first shown), as docs/gui-names.md lists them."""
    rows = ["| objectName | accessible name | kind | in |", "|---|---|---|---|"]
    for view in (window.results_view, window.runs_view):
        rows += [f"| `{w.objectName()}` | {w.accessibleName()} | {type(w).__name__} | {owner(w)} |"
                 for w in interactive_widgets(view)]
    return "\n".join(rows) + "\n"


def test_the_results_and_runs_tabs_controls_are_named_and_listed(window):
    before = {w.objectName() for w in interactive_widgets(window)}
    controls = [w for view in (window.results_view, window.runs_view) for w in interactive_widgets(view)]
    assert len(controls) > 15 and all(w.objectName() and w.accessibleName() for w in controls)
    names = [w.objectName() for w in controls]
    assert len(set(names)) == len(names) and not set(names) & before
    expected = tab_table(window)
    assert expected in DOC.read_text(encoding="utf-8"), "docs/gui-names.md: the Results and Runs table should " \
        "read:\n\n" + expected


def test_the_lr_finder_controls_are_named_and_listed(window, qtbot):
    from gui.lr_finder.dialog import LrFinderDialog

    dialog = LrFinderDialog(window.project.copy(), window)  # not shown: no sweep starts
    controls = interactive_widgets(dialog)
    assert len(controls) == 8 and all(w.objectName() and w.accessibleName() for w in controls)
    expected = start_page_table(dialog)
    assert expected in DOC.read_text(encoding="utf-8"), "docs/gui-names.md: the finder's table should read:\n\n" \
        + expected
