"""The head panel: the new classifier put on the network (``[head]``), and what it will look like."""

from __future__ import annotations

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGroupBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from engine.model.checklist import UNKNOWN_COUNT
from engine.model.heads import HeadSpec, describe_head
from gui.naming import named
from gui.panels.fields import (
    ProjectPanel,
    add_items,
    add_row,
    form_layout,
    format_int_list,
    help_label,
    parse_float,
    parse_int_list,
)

KINDS = [("Linear (one layer)", "linear"), ("Cosine (one layer)", "cosine"), ("MLP (hidden layers)", "mlp"),
         ("Keep the source's head (same classes)", "keep")]


class HeadPanel(ProjectPanel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.in_features: int | None = None
        self.num_classes: int | None = None
        self.head_params: int | None = None

        outer = QVBoxLayout(self)
        group = QGroupBox("New head")
        inner = QVBoxLayout(group)
        self.form = form = form_layout()
        self.kind = add_row(form, "Head", add_items(named(QComboBox(), "headKind", "Head"), KINDS),
                            "Linear: features straight to classes. Cosine: classes scored by the cosine between "
                            "the features and each class's vector; steadier with a few images per class. "
                            "MLP: hidden layers in between. Keep: the pretrained network's own classifier, its "
                            "outputs for your classes (same task: folders named like its classes).")
        self.hidden = add_row(form, "Hidden sizes", named(QLineEdit(), "headHidden", "Hidden layer sizes"),
                              "Sizes of the MLP's hidden layers, input to output, e.g. 256, 128.")
        self.hidden.setPlaceholderText("e.g. 256, 128")
        self.dropout = add_row(form, "Dropout", named(QLineEdit(), "headDropout", "Dropout"), "Fraction of features dropped in training, 0 to < 1.")
        self.classes = add_row(form, "Classes", QLabel())
        self.params = add_row(form, "Parameters", QLabel())
        inner.addLayout(form)

        self.description = QLabel()
        self.description.setFrameShape(QFrame.Shape.StyledPanel)
        self.description.setWordWrap(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.description.setFont(mono)
        self.description.setMargin(6)
        inner.addWidget(QLabel("Resulting head:"))
        inner.addWidget(self.description)
        self.note = help_label("")
        inner.addWidget(self.note)
        outer.addWidget(group)
        outer.addStretch(1)

        self.fields.combo("head.kind", self.kind)
        self.fields.line("head.hidden", self.hidden, parse_int_list, format_int_list)
        self.fields.line("head.dropout", self.dropout, parse_float)
        self.changed.connect(self._update)
        self.problems_changed.connect(self._update)
        self._update()

    def set_project(self, project) -> None:
        super().set_project(project)
        self._update()

    def set_num_classes(self, n: int | None) -> None:
        """The number of classes found in the data (None while unknown)."""
        self.num_classes = n
        self._update()

    def set_in_features(self, n: int | None) -> None:
        """The width of the features the head gets (`engine.model.heads.head_in_features`; None while unknown)."""
        self.in_features = n
        self._update()

    def set_head_params(self, n: int | None) -> None:
        """The head's parameter count (`Checklist.head_params`, the tree's own; None while unknown)."""
        self.head_params = n
        self._update()

    def _update(self) -> None:
        mlp = self.kind.currentData() == "mlp"
        self.form.setRowVisible(self.hidden, mlp)   # a linear head has no hidden layers and no dropout
        self.form.setRowVisible(self.dropout, mlp)   # nor has a cosine head
        self.note.setText("The source's own head: it starts trained on the source's task and trains on." if
                          self.kind.currentData() == "keep" else "The head is new: it starts untrained and is "
                          "always trained.")
        self.classes.setText(f"{self.num_classes} (from the data)" if self.num_classes
                             else "known once the data is scanned")
        self.params.setText("?" if self.head_params is None else f"{self.head_params:,}")
        self.params.setToolTip(UNKNOWN_COUNT if self.head_params is None else "")
        self.description.setText(self.describe())

    def describe(self) -> str:
        """The head as one line, e.g. "512 -> 256 -> ReLU -> Dropout 0.2 -> 5"; '?' stands for unknowns."""
        if self.project is None:
            return ""
        try:
            spec = HeadSpec.from_project(self.project.head)
        except ValueError as exc:
            return str(exc)
        text = describe_head(spec, self.in_features or 0, self.num_classes or 0)
        return _unknowns(text, self.in_features, self.num_classes)


def _unknowns(text: str, in_features: int | None, num_classes: int | None) -> str:
    """Replace the placeholder 0 used for a size not known yet by '?'."""
    parts = text.split(" -> ")
    if in_features is None and parts and parts[0] == "0":
        parts[0] = "?"
    if num_classes is None and parts and parts[-1] == "0":
        parts[-1] = "?"
    return " -> ".join(parts)
