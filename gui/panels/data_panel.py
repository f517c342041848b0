"""The data panel: training images (folder or CSV list), the validation and test splits, image size and
augmentation.

A chosen source is scanned off the GUI thread (`gui.tasks.Latest`: only the newest scan's answer counts); the
panel then shows the classes with their image counts, the split, sample thumbnails and the files that were
skipped, and hands the scan on (`scanned`): the window checks the project against it (`engine.preflight`) and
shows what is wrong beside these fields; the split shown is the engine's (`engine.sources.split_sizes`).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.sources import Sources, split_sizes
from gui.dialogs import choose_folder, open_file
from gui.naming import named
from gui.panels.data_view import ClassBars, ScanResult, SkippedList, ThumbnailStrip, scan_task
from gui.panels.fields import (
    ProjectPanel,
    add_items,
    add_row,
    form_layout,
    help_label,
    parse_float,
    parse_int,
    path_row,
)
from gui.tasks import Latest
from gui.text import WrappingLabel

AUGMENTS = [("None", "none"), ("Light (random crops, flips)", "light"),
            ("Strong (+ rotation, colour, erasing)", "strong")]


class DataPanel(ProjectPanel):
    scanned = Signal(object)   # the scan now on screen (engine.sources.Sources), or None: nothing to scan

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: ScanResult | None = None
        self._asked: tuple[str, str] | None = None        # the sources (`_where`) of the newest scan started
        self._scanned_for: tuple[str, str] | None = None  # ... and of the result on screen
        self._shut = False
        self.scans = Latest(self, "thaw-scan")
        self.scans.returned.connect(self._scanned)
        self.scans.errored.connect(self._scan_failed)

        outer = QVBoxLayout(self)
        source = QGroupBox("Images")
        form = form_layout(source)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)  # each path gets the dock's whole width
        self.train = named(QLineEdit(), "trainSource", "Training images")
        self.train.setPlaceholderText("a folder of class sub-folders, or a CSV list")
        self.train.setToolTip("Training images: a folder with one sub-folder per class, or a CSV of path,label.")
        self.browse_train = _button("Folder…", "browseTrainFolder", "Choose the training image folder")
        self.browse_csv = _button("CSV…", "browseTrainCsv", "Choose a training CSV list")
        form.addRow("Training", path_row(self.train, self.browse_train, self.browse_csv))
        self.val = named(QLineEdit(), "valSource", "Validation images")
        self.val.setPlaceholderText("optional; empty: a share is split off")
        self.val.setToolTip("A separate validation folder or CSV with the same class names (optional).")
        self.browse_val = _button("Folder…", "browseValFolder", "Choose the validation image folder")
        form.addRow("Validation", path_row(self.val, self.browse_val))
        self.val_fraction = add_row(form, "Validation share", named(QLineEdit(), "valFraction", "Validation share"),
                                    "Fraction of each class held out for validation when no folder is given.")
        self.test = named(QLineEdit(), "testSource", "Test images")
        self.test.setPlaceholderText("optional; empty: the test share below")
        self.test.setToolTip("A separate test folder or CSV with the same class names (optional). Never trained "
                             "on nor used to pick the best epoch: the kept model is evaluated on it at the end.")
        self.browse_test = _button("Folder…", "browseTestFolder", "Choose the test image folder")
        form.addRow("Test", path_row(self.test, self.browse_test))
        self.test_fraction = add_row(form, "Test share", named(QLineEdit(), "testFraction", "Test share"),
                                     "Fraction of each class held out for the final test when no test folder is "
                                     "given (0: no test split; the run is then evaluated on its validation split).")
        self.image_size = add_row(form, "Image size", named(QLineEdit(), "imageSize", "Image size"),
                                  "Side of the square images fed to the model, px.")
        self.size_note = help_label("")
        self.size_note.setVisible(False)
        form.addRow("", self.size_note)
        self.augment = add_row(form, "Augmentation", add_items(named(QComboBox(), "augment", "Augmentation"), AUGMENTS),
                               "Random changes to training images so the model sees more variety.")
        outer.addWidget(source)

        found = QGroupBox("Found")
        box = QVBoxLayout(found)
        self.summary = WrappingLabel("No data chosen yet.")  # a long path or reason wraps, in the box
        self.split_label = WrappingLabel()
        self.bars = ClassBars()
        self.thumbs = ThumbnailStrip()
        self.skipped = SkippedList()
        for w in (self.summary, self.bars, self.split_label, self.thumbs, self.skipped):
            box.addWidget(w)
        box.addWidget(help_label("Hover a bar or a thumbnail for details."))
        outer.addWidget(found)
        outer.addStretch(1)

        f = self.fields
        f.line("data.train", self.train)
        f.line("data.val", self.val)
        f.line("data.val_fraction", self.val_fraction, parse_float)
        f.line("data.test", self.test)
        f.line("data.test_fraction", self.test_fraction, parse_float)
        f.line("data.image_size", self.image_size, parse_int, note=self.size_note)
        f.combo("data.augment", self.augment)
        f.extra_widgets += [self.browse_train, self.browse_csv, self.browse_val, self.browse_test]
        self.browse_train.clicked.connect(lambda: self._browse("data.train", folder=True))
        self.browse_csv.clicked.connect(lambda: self._browse("data.train", folder=False))
        self.browse_val.clicked.connect(lambda: self._browse("data.val", folder=True))
        self.browse_test.clicked.connect(lambda: self._browse("data.test", folder=True))
        # Scan when the person has finished typing a path (Return or leaving the field), not per keystroke:
        # a half-typed path such as "/" is a folder too, and a scan cannot be interrupted.
        for edit in (self.train, self.val, self.test):
            edit.textEdited.connect(lambda _t: self._sync_val_fraction())
            edit.editingFinished.connect(self._source_done)
        self.changed.connect(self._show_split)
        self._clear_view()

    # ------------------------------------------------------------ the contract

    @property
    def sources(self) -> Sources | None:
        """The scan of the project's sources as they are now; None while there is none (or it is of other paths)."""
        p = self.project
        if self.result is None or p is None or self._scanned_for != self._where():
            return None
        return self.result.sources

    def is_scanning(self) -> bool:
        return self.scans.is_busy()

    def set_project(self, project) -> None:
        super().set_project(project)
        self.rescan()

    def show_values(self) -> None:
        """The fields and the split again; a scan only if the sources moved (undoing a share needs none)."""
        self.fields.load(self.project)
        self._sync_val_fraction()
        self._source_done()
        self._show_split()

    def set_read_only(self, read_only: bool) -> None:
        super().set_read_only(read_only)
        if not read_only:
            self._sync_val_fraction()

    def shutdown(self) -> None:
        """Wait for every scan still running and start no more (also done on close: as the window goes, a field
        losing its focus finishes its editing); the main window calls it before exiting."""
        self._shut = True
        self.scans.shutdown()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------ scanning

    def rescan(self) -> None:
        """Scan the project's data now (the answer of any older scan still running is ignored)."""
        self._sync_val_fraction()
        p = self.project
        if self._shut:
            return
        self.scans.cancel()
        self.result, self._scanned_for = None, None
        self._asked = self._where()
        if p is None or not p.data.train.strip():
            self._clear_view()
            self.scanned.emit(None)
            return
        copy = p.copy()
        self.summary.setText(f"Scanning {p.resolve(p.data.train)} …")
        self.scans.start(lambda state: scan_task(state, copy))
        self.problems_changed.emit()  # Start waits for this scan

    def _where(self) -> tuple[str, ...] | None:
        """Where the project's sources are, as absolute paths: the same after a Save As elsewhere rebased them."""
        p = self.project
        if p is None:
            return None
        return tuple(str(p.resolve(v).resolve()) if v.strip() else "" for v in (p.data.train, p.data.val, p.data.test))

    def _source_done(self) -> None:
        p = self.project
        if p is not None and self._where() != self._asked:
            self.rescan()

    def _scan_failed(self, exc: BaseException) -> None:
        """A scan that crashed (not a data problem, which the scan reports itself): shown as the source's error."""
        self._scanned(ScanResult(Sources(train_error=f"cannot scan: {type(exc).__name__}: {exc}")))

    def _scanned(self, result: ScanResult) -> None:
        self.result, self._scanned_for = result, self._asked
        s = result.sources
        if s.train is None:
            self._clear_view()
            self.summary.setText(f"Cannot use this source: {s.train_error}")
        else:
            left_out = (f"; left out for want of usable images: {', '.join(s.train.empty_classes)}"
                        if s.train.empty_classes else "")
            self.summary.setText(f"{len(s.train.classes)} classes, {len(s.train.samples)} images{left_out}")
            self.bars.set_counts(s.train.counts())
            self.bars.setVisible(True)
            self.thumbs.set_images(result.thumbnails)
            self.thumbs.setVisible(True)
            self.skipped.set_skipped(s.train.skipped + [f for _, held, _ in s.held_out() if held for f in held.skipped])
            self._show_split()
        self.scanned.emit(self.sources)

    # ------------------------------------------------------------ showing

    def _clear_view(self) -> None:
        self.summary.setText("No data chosen yet.")
        self.bars.set_counts({})
        self.bars.setVisible(False)
        self.thumbs.set_images([])
        self.thumbs.setVisible(False)
        self.skipped.set_skipped([])
        self.split_label.setText("")

    def _show_split(self) -> None:
        """Train/validation/test counts, as the engine will split them (`engine.sources.split_sizes`)."""
        s, p = self.sources, self.project
        if s is None or s.train is None or p is None:
            return
        sizes = split_sizes(p, s)
        if sizes is None:
            self.split_label.setText("Split: not possible with these sources and shares (see the marked field)")
            return
        train, val, test = sizes
        d = p.data
        val_from = "the validation source" if d.val.strip() else f"{d.val_fraction:.0%} of each class"
        text = f"Split: {train} train, {val} validation ({val_from})"
        if test:
            test_from = "the test source" if d.test.strip() else f"{d.test_fraction:.0%} of each class"
            text += f", {test} test ({test_from}, evaluated once at the end)"
        self.split_label.setText(text + ("; stratified" if not (d.val.strip() and d.test.strip()) else ""))

    def _sync_val_fraction(self) -> None:
        """A share only matters when no separate source is given for it."""
        enabled = self.train.isEnabled()
        self.val_fraction.setEnabled(not self.val.text().strip() and enabled)
        self.test_fraction.setEnabled(not self.test.text().strip() and enabled)

    def _browse(self, key: str, folder: bool) -> None:
        edit = {"data.train": self.train, "data.val": self.val, "data.test": self.test}[key]
        start = self.project.resolve(edit.text()) if self.project and edit.text().strip() else None
        if folder:
            path = choose_folder(self, "Image folder (one sub-folder per class)", start)
        else:
            path = open_file(self, "CSV list (path,label)", start, "CSV lists (*.csv)")
        if path:
            self.use_source(path, key)

    def use_source(self, path: str, key: str = "data.train") -> bool:
        """Take `path` (a folder of images or a CSV list: chosen, or dropped on the window) as a source and scan it."""
        {"data.train": self.train, "data.val": self.val, "data.test": self.test}[key].setText(path)
        if self.fields.commit(key):
            self.rescan()
            return True
        return False


def _button(text: str, name: str, accessible: str) -> QToolButton:
    b = named(QToolButton(), name, accessible)
    b.setText(text)
    return b

