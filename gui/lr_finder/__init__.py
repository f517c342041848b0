"""The learning-rate finder in the window (a mixin of `MainWindow`): Find... beside the learning rate opens its
dialog (`dialog.LrFinderDialog`, made on use: its plot imports pyqtgraph), and a rate picked there is an
undoable edit of ``train.lr`` like any other."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gui.lr_finder.dialog import LrFinderDialog


class LrFinding:
    """For a window with `project`, `training_panel`, `is_running` and `_project_edited`."""

    lr_finder: LrFinderDialog | None = None  # the dialog last opened

    def find_lr(self) -> None:
        """The learning-rate finder on the project as it is now; a rate it gives is an edit like any other."""
        from gui.lr_finder.dialog import LrFinderDialog

        self.close_lr_finder()
        self.lr_finder = LrFinderDialog(self.project.copy(), self)
        self.lr_finder.use.connect(self.use_lr)
        self.lr_finder.show()

    def use_lr(self, lr: float) -> None:
        if self.is_running():
            return
        self.project.set("train.lr", lr)
        self.training_panel.show_values()
        self._project_edited()

    def close_lr_finder(self) -> None:
        """Close the dialog, if any: that stops its sweep and waits for it."""
        if self.lr_finder is not None:
            self.lr_finder.close()
