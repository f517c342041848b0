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
