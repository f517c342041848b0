"""The data panel: training images (folder or CSV list), the validation split, image size and augmentation.

A chosen source is scanned off the GUI thread; the panel then shows the classes with their image counts,
the split, sample thumbnails and the files that were skipped, and announces the classes (`classes_changed`).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.data import split
from engine.errors import ThawError
from engine.model import zoo
from gui import threads
from gui.panels.data_view import ClassBars, ScanResult, ScanThread, SkippedList, ThumbnailStrip
from gui.panels.fields import ProjectPanel, add_items, add_row, help_label, parse_float, parse_int

AUGMENTS = [("None", "none"), ("Light (random crops, flips)", "light"),
            ("Strong (+ rotation, colour, erasing)", "strong")]


class DataPanel(ProjectPanel):
    classes_changed = Signal(list)   # class names of the training data ([] while unknown)
    scan_finished = Signal()         # a scan's result (or its failure) is on screen

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scan: ScanResult | None = None
        self.classes: list[str] = []
        self._threads: list[ScanThread] = []
        self._current: ScanThread | None = None
        self._scanned_sources: tuple[str, str] | None = None

        outer = QVBoxLayout(self)
        source = QGroupBox("Images")
        form = QFormLayout(source)
        self.train = QLineEdit()
        self.train.setPlaceholderText("a folder with one sub-folder per class, or a CSV list")
        self.train.setToolTip("Training images: a folder with one sub-folder per class, or a CSV of path,label.")
        self.browse_train = _button("Folder…")
        self.browse_csv = _button("CSV…")
        form.addRow("Training", _row(self.train, self.browse_train, self.browse_csv))
        self.val = QLineEdit()
        self.val.setPlaceholderText("optional; empty = split off a fraction")
        self.val.setToolTip("A separate validation folder or CSV with the same class names (optional).")
        self.browse_val = _button("Folder…")
        form.addRow("Validation", _row(self.val, self.browse_val))
        self.val_fraction = add_row(form, "Validation share", QLineEdit(),
                                    "Fraction of each class held out for validation when no folder is given.")
        self.image_size = add_row(form, "Image size", QLineEdit(), "Side of the square images fed to the model, px.")
        self.size_note = help_label("")
        self.size_note.setVisible(False)
        form.addRow("", self.size_note)
        self.augment = add_row(form, "Augmentation", add_items(QComboBox(), AUGMENTS),
                               "Random changes to training images so the model sees more variety.")
        outer.addWidget(source)

        found = QGroupBox("Found")
        box = QVBoxLayout(found)
        self.summary = QLabel("No data chosen yet.")
        self.summary.setWordWrap(True)
        self.split_label = QLabel()
        self.split_label.setWordWrap(True)
        self.bars = ClassBars()
        self.thumbs = ThumbnailStrip()
        self.skipped = SkippedList()
        for w in (self.summary, self.bars, self.split_label, self.thumbs, self.skipped):
            box.addWidget(w)
        box.addWidget(help_label("Hover a bar or a thumbnail for details."))
        outer.addWidget(found)
        outer.addStretch(1)

        f = self.fields
        f.line("data.train", self.train, check=lambda v: self._path_problem(v, "training"))
        f.line("data.val", self.val, check=lambda v: self._path_problem(v, "validation"))
        f.line("data.val_fraction", self.val_fraction, parse_float, check=self._split_problem)
        f.line("data.image_size", self.image_size, parse_int)
        f.combo("data.augment", self.augment)
        f.extra_widgets += [self.browse_train, self.browse_csv, self.browse_val]
        self.browse_train.clicked.connect(lambda: self._browse("data.train", folder=True))
        self.browse_csv.clicked.connect(lambda: self._browse("data.train", folder=False))
        self.browse_val.clicked.connect(lambda: self._browse("data.val", folder=True))
        # Scan when the person has finished typing a path (Return or leaving the field), not per keystroke:
        # a half-typed path such as "/" is a folder too, and a scan cannot be interrupted.
        for edit in (self.train, self.val):
            edit.textEdited.connect(lambda _t: self._sync_val_fraction())
            edit.editingFinished.connect(self._source_done)
        self.val_fraction.textEdited.connect(lambda _t: self._show_split())
        self.image_size.textEdited.connect(lambda _t: self._show_size_note())
        self.val.textEdited.connect(lambda _t: self.fields.recheck("data.val_fraction"))
        self._arch_info = None
        self._clear_view()

    # ------------------------------------------------------------ the contract

    def set_arch(self, name: str) -> None:
        """The project's architecture, so the panel can say when it will use another image size."""
        self._arch_info = zoo.arch_info(name) if zoo.is_known_arch(name) else None
        self._show_size_note()

    def set_project(self, project) -> None:
        super().set_project(project)
        self.set_arch(project.model.arch)
        self.rescan()

    def set_read_only(self, read_only: bool) -> None:
        super().set_read_only(read_only)
        if not read_only:
            self._sync_val_fraction()

    def shutdown(self) -> None:
        """Stop and join every scan thread (also done on close); the main window calls it before exiting."""
        self._current = None
        for t in list(self._threads):
            t.requestInterruption()
        for t in list(self._threads):
            t.wait()
        self._threads.clear()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------ scanning

    def rescan(self) -> None:
        """Scan the project's data now (a newer scan makes any older one's result ignored)."""
        self._sync_val_fraction()
        p = self.project
        self._scanned_sources = (p.data.train, p.data.val) if p is not None else None
        if p is None or not p.data.train.strip() or self.fields.bindings["data.train"].problem:
            self._current = None
            self._clear_view()
            self._set_classes([])
            return
        val = p.resolve(p.data.val) if p.data.val.strip() else None
        t = ScanThread(p.resolve(p.data.train), val)
        threads.register(t)
        t.done.connect(self._scanned)
        t.finished.connect(self._forget)
        self._threads.append(t)
        self._current = t
        self.summary.setText(f"Scanning {p.resolve(p.data.train)} …")
        t.start()

    def _source_done(self) -> None:
        p = self.project
        if p is not None and (p.data.train, p.data.val) != self._scanned_sources:
            self.rescan()

    def _forget(self) -> None:
        t = self.sender()
        if t in self._threads:
            self._threads.remove(t)
            t.deleteLater()

    def _scanned(self, t: ScanThread, result: ScanResult) -> None:
        if t is not self._current:
            return  # an older scan, overtaken by a newer one
        self.scan = result
        self.fields.set_problem("data.train", result.error)
        val_problem = result.val_error
        if result.train is not None and result.val is not None:
            unknown = sorted(set(result.val.classes) - set(result.train.classes))
            if unknown:
                val_problem = (f"validation classes not in the training data: {', '.join(unknown)}; "
                               "use the training folder's class names")
        if self.project is not None and self.project.data.val.strip():
            self.fields.set_problem("data.val", val_problem)
        if result.train is None:
            self._clear_view()
            self.summary.setText("Cannot use this source: see the marked field.")
            self._set_classes([])
        else:
            s = result.train
            self.summary.setText(f"{len(s.classes)} classes, {len(s.samples)} images")
            self.bars.set_counts(s.counts())
            self.bars.setVisible(True)
            self.thumbs.set_images(result.thumbnails)
            self.thumbs.setVisible(True)
            self.skipped.set_skipped(s.skipped + (result.val.skipped if result.val else []))
            self.fields.recheck("data.val_fraction")
            self._show_split()
            self._set_classes(list(s.classes))
        self.scan_finished.emit()

    def _set_classes(self, classes: list[str]) -> None:
        if classes != self.classes:
            self.classes = classes
            self.classes_changed.emit(list(classes))

    # ------------------------------------------------------------ showing

    def _clear_view(self) -> None:
        self.scan = None
        self.summary.setText("No data chosen yet.")
        self.bars.set_counts({})
        self.bars.setVisible(False)
        self.thumbs.set_images([])
        self.thumbs.setVisible(False)
        self.skipped.set_skipped([])
        self.split_label.setText("")

    def _split(self, fraction: float):
        """The engine's stratified split of the scanned samples (None without a usable scan)."""
        r, p = self.scan, self.project
        if r is None or r.train is None or p is None:
            return None
        return split(r.train.samples, fraction, p.train.seed, r.train.classes)

    def _split_problem(self, fraction: float) -> str | None:
        if self.project is not None and self.project.data.val.strip():
            return None  # a validation source is given; the share is not used
        try:
            self._split(fraction)
        except ThawError as exc:
            return str(exc)
        return None

    def _show_split(self) -> None:
        """Train/validation counts: from the validation source, or the engine's stratified split."""
        r, p = self.scan, self.project
        if r is None or r.train is None or p is None:
            return
        if p.data.val.strip():
            text = (f"Split: {len(r.train.samples)} train, {len(r.val.samples)} validation (from the validation "
                    "source)") if r.val is not None else ""
        else:
            try:
                train, val = self._split(p.data.val_fraction)
                text = (f"Split: {len(train)} train, {len(val)} validation "
                        f"({p.data.val_fraction:.0%} of each class, stratified)")
            except ThawError:
                text = "Split: not possible with this validation share (see the marked field)"
        self.split_label.setText(text)

    def _show_size_note(self) -> None:
        notes = []
        if self._arch_info is not None and self.project is not None:
            notes = zoo.effective_image_size(self._arch_info, self.project.data.image_size)[1]
        self.size_note.setText("\n".join(notes))
        self.size_note.setVisible(bool(notes))

    def _sync_val_fraction(self) -> None:
        """The share only matters when no validation source is given."""
        self.val_fraction.setEnabled(not self.val.text().strip() and self.train.isEnabled())

    # ------------------------------------------------------------ fields

    def _path_problem(self, value: str, what: str) -> str | None:
        if not value.strip() or self.project is None:
            return None  # an empty training source is reported by the project's own check
        p = self.project.resolve(value)
        if p.suffix.lower() == ".csv":
            return None if p.is_file() else f"CSV list {p} does not exist"
        if not p.is_dir():
            return f"{p} is not a folder; choose the {what} image folder (one sub-folder per class)"
        return None

    def _browse(self, key: str, folder: bool) -> None:
        edit = self.train if key == "data.train" else self.val
        start = str(self.project.resolve(edit.text() or ".")) if self.project else ""
        if folder:
            path = QFileDialog.getExistingDirectory(self, "Image folder (one sub-folder per class)", start)
        else:
            path, _ = QFileDialog.getOpenFileName(self, "CSV list (path,label)", start, "CSV lists (*.csv)")
        if path:
            edit.setText(path)
            if self.fields.commit(key):
                self.rescan()


def _button(text: str) -> QToolButton:
    b = QToolButton()
    b.setText(text)
    return b


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for i, w in enumerate(widgets):
        row.addWidget(w, 1 if i == 0 else 0)
    return row

