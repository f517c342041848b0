"""The end-of-run card: what it says, including files that were skipped."""

from engine.events import FitEnded
from gui.run.summary import RunSummary, describe


def _ended(**kw) -> FitEnded:
    base = dict(epochs_completed=3, best_val_accuracy=0.9, final_val_accuracy=0.85, stopped_early=False,
                stopped_by_user=False, seconds=75.0, frozen_verified=True, run_dir="")
    return FitEnded(**(base | kw))


def test_the_card_says_how_the_run_went():
    text = describe(_ended())
    assert "Run finished" in text and "1:15" in text and "90.0%" in text and "85.0%" in text
    assert "unchanged" in text and "skipped" not in text
    assert "stopped by you" in describe(_ended(stopped_by_user=True))
    assert "CHANGED" in describe(_ended(frozen_verified=False))


def test_skipped_files_are_counted_on_the_card(qtbot):
    card = RunSummary()
    qtbot.addWidget(card)
    card.show_result(_ended(skipped_files=3))
    assert "3 unusable file(s) skipped" in card.label.text() and "summary.json" in card.label.text()
    assert not card.open_button.isEnabled()  # no run folder


def test_a_run_folder_nothing_opens_is_shown_with_its_path_to_copy(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication

    opened = []
    card = RunSummary(opener=lambda url: opened.append(url) or False)  # no file manager on this machine
    qtbot.addWidget(card)
    card.show_result(_ended(run_dir=str(tmp_path)))
    assert not card.folder_row.isVisibleTo(card)
    QApplication.clipboard().clear()

    card.open_button.click()
    assert [url.toLocalFile() for url in opened] == [str(tmp_path.resolve())]
    assert card.folder_row.isVisibleTo(card) and card.folder_path.text() == str(tmp_path.resolve())
    assert card.folder_path.isReadOnly()
    card.copy_button.click()
    assert QApplication.clipboard().text() == str(tmp_path.resolve())

    card.show_result(_ended(run_dir=str(tmp_path)))  # the next run's card starts without it
    assert not card.folder_row.isVisibleTo(card)


def test_a_run_folder_that_opens_shows_no_path(qtbot, tmp_path):
    card = RunSummary(opener=lambda url: True)
    qtbot.addWidget(card)
    card.show_result(_ended(run_dir=str(tmp_path)))
    card.open_button.click()
    assert not card.folder_row.isVisibleTo(card)
