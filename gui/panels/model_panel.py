"""The model panel: which architecture to start from (``model.arch``) and its weights (``model.weights``).

The picker lists every architecture `engine.model.zoo` knows, with its size, ImageNet top-1 and whether its
pretrained weights are on this machine, and filters as the person types; timm's models join the list when the
person ticks "timm models" (where timm is installed). Thaw downloads nothing by itself: the weights box imports
a downloaded file or downloads the selected architecture's when asked (`pretrained_box`).
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QGroupBox,
    QHeaderView,
    QLineEdit,
    QRadioButton,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from engine.io.weights import SUFFIXES
from engine.model import timm_zoo, zoo
from gui.dialogs import open_file
from gui.naming import named
from gui.panels.fields import ProjectPanel, path_row
from gui.panels.pretrained_box import PretrainedBox, format_size
from gui.tasks import Task
from gui.text import WrappingLabel, breakable

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ["Architecture", "Params", "Top-1 %", "Local"]


def format_params(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} k"


class ModelPanel(ProjectPanel):
    weights_arrived = Signal(str)  # an architecture's pretrained file is now on this machine: ask the engine again

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.infos = {name: zoo.arch_info(name) for name in zoo.list_architectures()}
        self._picked: str | None = None
        self._selecting = False
        self._timm_task: Task | None = None
        self._timm_infos: list[zoo.ArchInfo] | None = None

        outer = QVBoxLayout(self)
        pick = QGroupBox("Architecture")
        box = QVBoxLayout(pick)
        self.search = named(QLineEdit(), "modelSearch", "Search architectures")
        self.search.setPlaceholderText(f"Search {len(self.infos)} architectures (name or family)…")
        self.search.setClearButtonEnabled(True)
        box.addWidget(self.search)
        self.show_timm = named(QCheckBox("timm models"), "showTimmModels", "List timm's models too")
        if timm_zoo.available():
            self.show_timm.setToolTip("List timm's pretrained models (timm:NAME) too; their weights are read "
                                      f"from the Hugging Face cache {timm_zoo.hf_cache_dir()}")
        else:
            self.show_timm.setEnabled(False)
            self.show_timm.setToolTip("timm is not installed: pip install \".[timm]\" lists its models here")
        self.show_timm.toggled.connect(self._timm_toggled)
        box.addWidget(self.show_timm)

        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(COLUMNS)
        for info in self.infos.values():
            self.model.appendRow(self._row(info))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterRole(SEARCH_ROLE)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setSortRole(SORT_ROLE)
        self.view = named(QTreeView(), "architectureList", "Architectures")
        self.view.setModel(self.proxy)
        self.view.setRootIsDecorated(False)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep both ends: resnext…32x8d
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        fm = self.view.fontMetrics()
        for c, sample in ((1, "Params_"), (2, "Top-1 %"), (3, "Local")):  # narrow, so names keep the room
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(c, fm.horizontalAdvance(sample) + 14)
        self.view.setMinimumHeight(180)
        box.addWidget(self.view, 1)
        self.details = WrappingLabel()
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(self.details)
        outer.addWidget(pick, 1)

        source = QGroupBox("Weights")
        QVBoxLayout(source).addWidget(weights_box := QWidget())
        self.weights_box = weights_box   # marked as a whole when the weight source is unusable
        weights_box.setObjectName("weightsBox")
        wl = QVBoxLayout(weights_box)
        wl.setContentsMargins(4, 4, 4, 4)
        self.pretrained = named(QRadioButton("Pretrained"), "weightsPretrained", "Pretrained weights")
        self.none = named(QRadioButton("None (random initialisation)"), "weightsNone", "No weights (random initialisation)")
        self.from_file = named(QRadioButton("From a file"), "weightsFromFile", "Weights from a file")
        self.group = QButtonGroup(self)
        for b in (self.pretrained, self.none, self.from_file):
            self.group.addButton(b)
            b.clicked.connect(self._weights_clicked)
        self.weights_file = named(QLineEdit(), "weightsFile", "Weights file")
        self.weights_file.setPlaceholderText("a .safetensors or .pth file of this model")
        self.weights_file.setToolTip("A state dict of this architecture: " + ", ".join(SUFFIXES))
        self.choose_file = named(QToolButton(), "chooseWeightsFile", "Choose a weights file")
        self.choose_file.setText("Choose file…")
        self.choose_file.clicked.connect(self._browse_weights)
        wl.addWidget(self.pretrained)
        wl.addWidget(self.none)
        wl.addWidget(self.from_file, 0, Qt.AlignmentFlag.AlignLeft)  # sized to its label
        wl.addLayout(path_row(self.weights_file, self.choose_file))
        self.fetcher = PretrainedBox()
        self.fetcher.arrived.connect(self._weights_arrived)
        source.layout().addWidget(self.fetcher)
        outer.addWidget(source)

        f = self.fields
        f.custom("model.arch", self.view, lambda: self._picked, self._select)
        f.custom("model.weights", weights_box, self._read_weights, self._write_weights)
        f.extra_widgets += [self.search]
        self.weights_file.textEdited.connect(self._file_edited)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._take_first_match)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        self._show_details()

    # ------------------------------------------------------------ the list

    def _row(self, info: zoo.ArchInfo) -> list[QStandardItem]:
        name = QStandardItem(info.name)
        name.setData(info.name.lower(), SORT_ROLE)
        name.setData(f"{info.name} {info.family}", SEARCH_ROLE)
        name.setToolTip(f"{info.name} ({info.family})")
        params = QStandardItem(format_params(info.num_params))
        params.setData(info.num_params or 0, SORT_ROLE)
        acc = QStandardItem(f"{info.imagenet_acc1:.1f}" if info.imagenet_acc1 is not None else "—")
        acc.setData(info.imagenet_acc1 or 0.0, SORT_ROLE)
        offline = QStandardItem("✓" if info.weights_cached else "—")
        offline.setData(int(info.weights_cached), SORT_ROLE)
        offline.setToolTip("pretrained weights are on this machine" if info.weights_cached
                           else f"pretrained weights not on this machine ({info.weights_file})")
        if not info.weights_cached:
            offline.setForeground(QBrush(QColor("#9e9e9e")))
        for item in (params, acc, offline):
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return [name, params, acc, offline]

    def visible_names(self) -> list[str]:
        """The architectures the search leaves in the list, in display order."""
        return [self.proxy.index(r, 0).data() for r in range(self.proxy.rowCount())]

    def _filter(self, text: str) -> None:
        self._selecting = True  # rows vanishing under the filter move the current row: not a pick
        try:
            self.proxy.setFilterFixedString(text.strip())
        finally:
            self._selecting = False
        if self.project is not None:
            self._select(self.project.model.arch)  # keep the project's pick highlighted when it is listed

    def _take_first_match(self) -> None:
        if self.proxy.rowCount():
            self._select(self.proxy.index(0, 0).data())
            self._pick(self._picked)

    def _select(self, name: str) -> None:
        """Highlight `name` if it is listed (no edit of the project)."""
        self._selecting = True
        try:
            matches = self.proxy.match(self.proxy.index(0, 0), Qt.ItemDataRole.DisplayRole, name, 1,
                                       Qt.MatchFlag.MatchExactly)
            self.view.setCurrentIndex(matches[0] if matches else QModelIndex())
            if matches:
                self.view.scrollTo(matches[0])
            self._picked = name
        finally:
            self._selecting = False
        self._show_details()

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not self._selecting and current.isValid():
            self._pick(current.siblingAtColumn(0).data())

    def _pick(self, name: str) -> None:
        self._picked = name
        self.fields.commit("model.arch")
        self._show_details()

    def _show_details(self) -> None:
        info = self.infos.get(self.project.model.arch) if self.project else None
        self.fetcher.set_arch(info.name if info else None, info)
        if info is None:
            self.details.setText("")
            return
        acc = f"{info.imagenet_acc1:.1f} % ImageNet top-1" if info.imagenet_acc1 is not None else "no ImageNet score"
        size = (f"; needs {info.fixed_size} px inputs exactly" if info.fixed_size
                else f"; needs inputs of at least {info.min_size} px" if info.min_size > 1 else "")
        if info.weights_cached:
            weights = f"{info.weights_name}: on this machine ({format_size(info.weights_size_bytes)})"
        elif zoo.is_timm(info.name):
            weights = (f"{info.weights_name}: <b>not on this machine</b>; Thaw reads them from the Hugging Face "
                       f"cache {breakable(str(timm_zoo.hf_cache_dir()))}, or choose its {info.weights_file} below")
        else:
            weights = (f"{info.weights_name}: <b>not on this machine</b>; copy {info.weights_file} "
                       f"({format_size(info.weights_size_bytes)}) into {breakable(str(zoo.checkpoints_dir()))}, "
                       f"or import or download it below (<tt>python main.py fetch-weights {info.name}</tt>)")
        p = info.preprocess
        self.details.setText(
            f"<b>{info.name}</b> ({info.family}) · {format_params(info.num_params)} parameters · {acc}<br>"
            f"Weights: {weights}<br>"
            f"Preprocessing: resize {p.resize}, crop {p.crop}, {p.interpolation}{size}")
        self.pretrained.setToolTip(f"{info.weights_name}, read from {info.weights_path}")

    # ------------------------------------------------------------ timm's models

    def _timm_toggled(self, on: bool) -> None:
        if not on:
            for info in self._timm_infos or []:
                self.infos.pop(info.name, None)
            first = len(zoo.list_architectures())
            self.model.removeRows(first, self.model.rowCount() - first)
            self._listed()
        elif self._timm_infos is not None:
            self._add_timm_rows()
        elif self._timm_task is None:
            self.show_timm.setText("timm models (loading…)")
            self._timm_task = Task(lambda _state: [zoo.arch_info(n) for n in timm_zoo.names()], self,
                                   name="thaw-timm-list")
            self._timm_task.returned.connect(self._timm_loaded)
            self._timm_task.finished.connect(self._timm_task_finished)
            self._timm_task.start()

    def _timm_loaded(self, infos: list[zoo.ArchInfo]) -> None:
        self._timm_infos = infos
        if self.show_timm.isChecked():
            self._add_timm_rows()

    def _timm_task_finished(self) -> None:
        self._timm_task.deleteLater()
        self._timm_task = None
        self.show_timm.setText("timm models")

    def _add_timm_rows(self) -> None:
        for info in self._timm_infos or []:
            self.infos[info.name] = info
            self.model.appendRow(self._row(info))
        self._listed()

    def _listed(self) -> None:
        """After rows came or went: the count in the search field, the project's pick highlighted again."""
        self.search.setPlaceholderText(f"Search {len(self.infos)} architectures (name or family)…")
        if self.project is not None:
            self._select(self.project.model.arch)

    def shutdown(self) -> None:
        """Cancel a download or import and wait for the panel's threads: the window is closing."""
        self.fetcher.shutdown()
        if self._timm_task is not None:
            self._timm_task.join()

    # ------------------------------------------------------------ weights

    def _weights_arrived(self, arch: str) -> None:
        """A pretrained file was imported or downloaded: its row and the details say so, and the window asks
        the engine again (the weights may be the ones the project needs)."""
        if arch in self.infos:
            self.infos[arch] = info = zoo.arch_info(arch)
            row = self.model.findItems(arch, Qt.MatchFlag.MatchExactly, 0)
            if row:
                r = row[0].row()
                for column, item in enumerate(self._row(info)):
                    self.model.setItem(r, column, item)
        self._show_details()
        self.weights_arrived.emit(arch)


    def _read_weights(self) -> str:
        if self.pretrained.isChecked():
            return "pretrained"
        if self.none.isChecked():
            return "none"
        return self.weights_file.text().strip()

    def _write_weights(self, value: str) -> None:
        if value in ("pretrained", "none"):
            (self.pretrained if value == "pretrained" else self.none).setChecked(True)
        else:
            self.from_file.setChecked(True)
            self.weights_file.setText(value)

    def _weights_clicked(self) -> None:
        self.weights_file.setEnabled(self.from_file.isChecked())
        self.fields.commit("model.weights")

    def _file_edited(self, _text: str) -> None:
        self.from_file.setChecked(True)
        self.fields.commit("model.weights")

    def _browse_weights(self) -> None:
        value = self.weights_file.text().strip()
        start = self.project.resolve(value) if self.project and value else None
        patterns = " ".join(f"*{s}" for s in SUFFIXES)
        path = open_file(self, "Weights file", start, f"Weights ({patterns});;All files (*)")
        if path:
            self.from_file.setChecked(True)
            self.weights_file.setText(path)
            self.fields.commit("model.weights")

    # ------------------------------------------------------------ the contract

    def set_project(self, project) -> None:
        super().set_project(project)
        self.weights_file.setEnabled(self.from_file.isChecked())
        if zoo.is_timm(project.model.arch) and self.show_timm.isEnabled():
            self.show_timm.setChecked(True)  # its row is among timm's
        self._show_details()

    def set_read_only(self, read_only: bool) -> None:
        super().set_read_only(read_only)
        for w in (self.pretrained, self.none, self.from_file, self.choose_file):
            w.setEnabled(not read_only)
        self.weights_file.setEnabled(not read_only and self.from_file.isChecked())
