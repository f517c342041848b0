"""A careless hand on the window: seeded random actions a person could take, on real widgets found by their
objectName (clicks, typing with key events, combo boxes, the layer checklist and its menu, presets, tabs, the
toolbar and menu actions, menus opened and an item picked, the cells and rows of the Results and Runs tabs' tables,
matrix and gallery, file dialogs and question boxes answered, files dropped), with what each did counted.

Legal means a person could do it: a disabled or hidden control is not touched, an error box is closed before
the next action (it is window-modal), and a file dialog gets one of the files a person might pick, or Cancel.
Runs stay small: Start is pressed only while the architecture is a small one (the set below) and the image
size is at most 64 px, so a run on a shared machine never takes more than a few hundred MB.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QModelIndex, QObject, QPoint, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QContextMenuEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFileDialog,
    QLineEdit,
    QMenu,
    QMessageBox,
    QSlider,
    QSpinBox,
    QTableView,
    QTabWidget,
)
from pytestqt.exceptions import TimeoutError as WaitTimeout

SMALL_ARCHS = ("thaw_digits_cnn", "resnet18", "mobilenet_v3_small", "squeezenet1_1")
RUN_BUTTONS = {"startRunButton", "pauseRunButton", "resumeRunButton", "stopRunButton"}
# Closing the window ends the test; Start has its own rule. Runs in several processes (torchrun) and transfer
# studies (dozens of runs) are too heavy for a shared machine: their own tests drive them.
NOT_BY_CHANCE = {"quit", "startPage", "startRun", "runInProcesses", "runInProcessesButton", "startStudy"}
ANSWERS = (QMessageBox.StandardButton.Save, QMessageBox.StandardButton.Discard, QMessageBox.StandardButton.Cancel,
           QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No)


class Monkey(QObject):
    """Seeded random actions on `window`; files it may pick, type or drop live under `place` (see `texts`)."""

    def __init__(self, window, qtbot, answer: dict, seed: int, place: dict[str, Path]) -> None:
        super().__init__()
        self.window, self.qtbot, self.answer = window, qtbot, answer
        self.rng = random.Random(seed)
        self.place = place
        self.done: Counter[str] = Counter()
        self.touched: Counter[str] = Counter()  # the objectNames acted on (tabs by their text)
        self.texts = self._texts()
        self.actions = [(12, self.click), (14, self.type_text), (6, self.correct), (5, self.choose), (3, self.spin),
                        (4, self.tree), (1, self.tree_menu), (4, self.tab), (5, self.trigger), (3, self.menu),
                        (4, self.item), (4, self.start), (3, self.run_control), (2, self.arch), (2, self.drop),
                        (3, self.wait)]
        QApplication.instance().installEventFilter(self)

    def remove(self) -> None:
        QApplication.instance().removeEventFilter(self)

    # ---------------------------------------------------------------- one step

    def step(self) -> str:
        """One random action; its name (what it did, for the log of a failure)."""
        error_box = self.window.error_box
        if error_box is not None and error_box.isVisible():
            error_box.button(QMessageBox.StandardButton.Ok).click()  # the person reads it and closes it
        self.answer["button"] = self.rng.choice(ANSWERS)
        weights, actions = zip(*self.actions, strict=True)
        for _ in range(8):  # an action with nothing to act on (a hidden dock, a run going): another one
            what = self.rng.choices(actions, weights)[0]()
            if what:
                self.done[what.split(" ")[0]] += 1
                return what
        return "nothing to do"

    def _visible(self, kind: type) -> list:
        return [w for w in self.window.findChildren(kind) if w.objectName() and w.isVisible() and w.isEnabled()]

    # ---------------------------------------------------------------- the actions

    def click(self) -> str | None:
        buttons = [b for b in self._visible(QAbstractButton) if b.objectName() not in RUN_BUTTONS | NOT_BY_CHANCE]
        if not buttons:
            return None
        b = self.rng.choice(buttons)
        self.touched[b.objectName()] += 1
        self.qtbot.mouseClick(b, Qt.MouseButton.LeftButton)
        return f"click {b.objectName()}"

    def type_text(self) -> str | None:
        edits = [e for e in self._visible(QLineEdit) if not e.isReadOnly() and e.objectName() in self.texts]
        if not edits:
            return None
        e = self.rng.choice(edits)
        text = self.rng.choice(sum(self.texts[e.objectName()], []))
        self.enter(e, text, finish=self.rng.random() < 0.8)  # else left as typed (editing goes on elsewhere)
        return f"type {e.objectName()}={text!r}"

    def enter(self, edit: QLineEdit, text: str, finish: bool = True) -> None:
        """Replace the field's text by key presses: a short text typed, a path pasted (Ctrl+V)."""
        edit.setFocus()
        edit.selectAll()
        self.qtbot.keyClick(edit, Qt.Key.Key_Backspace)
        if len(text) > 12:
            QApplication.clipboard().setText(text)
            self.qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        else:
            self.qtbot.keyClicks(edit, text)
        if finish:
            self.qtbot.keyClick(edit, Qt.Key.Key_Return)

    def correct(self) -> str | None:
        """What a person does with the reasons above the checklist: follow one to its field, put a value there."""
        reasons = self.window.reasons()
        if not reasons:
            return None
        key = self.rng.choice(reasons).key
        self.window.go_to_field(key)  # what the reason's link does
        e = QApplication.focusWidget()
        if not isinstance(e, QLineEdit) or not self.texts.get(e.objectName(), ([], []))[0]:
            return f"correct {key} (no field to type in)"
        text = self.rng.choice(self.texts[e.objectName()][0])
        self.enter(e, text)
        return f"correct {e.objectName()}={text!r}"

    def choose(self) -> str | None:
        combos = [c for c in self._visible(QComboBox) if c.count()]
        if not combos:
            return None
        c = self.rng.choice(combos)
        self.touched[c.objectName()] += 1
        c.setFocus()
        key = self.rng.choice((Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_Home, Qt.Key.Key_End))
        self.qtbot.keyClick(c, key)
        return f"choose {c.objectName()}={c.currentText()!r}"

    def spin(self) -> str | None:
        spins = self._visible(QSpinBox) + self._visible(QSlider)
        if not spins:
            return None
        s = self.rng.choice(spins)
        self.touched[s.objectName()] += 1
        s.setFocus()
        self.qtbot.keyClick(s, self.rng.choice((Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp)))
        return f"spin {s.objectName()}={s.value()}"

    def _tree_row(self):
        tree = self.window.freeze_panel.tree
        model = tree.model()
        if not tree.isVisible() or model is None or not model.rowCount():
            return None, None
        index = model.index(self.rng.randrange(model.rowCount()), 0)
        while model.rowCount(index) and self.rng.random() < 0.6:
            tree.setExpanded(index, True)
            index = model.index(self.rng.randrange(model.rowCount(index)), 0, index)
        tree.scrollTo(index)
        tree.setCurrentIndex(index)
        return tree, index

    def tree(self) -> str | None:
        tree, index = self._tree_row()
        if tree is None:
            return None
        self.qtbot.keyClick(tree, self.rng.choice((Qt.Key.Key_Space, Qt.Key.Key_Space, Qt.Key.Key_Return)))
        return "tree key on a layer"

    def tree_menu(self) -> str | None:
        tree, index = self._tree_row()
        if tree is None:
            return None
        rect = tree.visualRect(index)
        if not rect.isValid():
            return None
        at = rect.center()
        menu = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, at, tree.viewport().mapToGlobal(at))
        QApplication.sendEvent(tree.viewport(), menu)  # a right-click (offscreen sends none for a mouse click)
        return "tree_menu on a layer"

    def tab(self) -> str | None:
        """A tab of the set-up, of the centre (Layers, Results, Runs) or of the Results' own, clicked."""
        bars = [t.tabBar() for t in self._visible(QTabWidget) if t.count()]
        if not bars:
            return None
        bar = self.rng.choice(bars)
        i = self.rng.randrange(bar.count())
        self.touched[bar.tabText(i)] += 1
        self.qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(i).center())
        return f"tab {bar.tabText(i)}"

    def item(self) -> str | None:
        """A cell or row of a table, list, matrix or gallery (the checklist has its own actions) clicked, now and
        then twice, or chosen with the keyboard."""
        top = QModelIndex()
        views = [v for v in self._visible(QAbstractItemView) if v is not self.window.freeze_panel.tree
                 and v.model() is not None and v.model().rowCount(top)]
        if not views:
            return None
        v = self.rng.choice(views)
        model = v.model()
        columns = v.horizontalHeader().count() if isinstance(v, QTableView) else 1
        index = model.index(self.rng.randrange(model.rowCount(top)), self.rng.randrange(max(1, columns)))
        v.scrollTo(index)
        rect = v.visualRect(index)
        if not rect.isValid():
            return None
        self.touched[v.objectName()] += 1
        how = self.rng.random()
        if how < 0.6:
            self.qtbot.mouseClick(v.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        elif how < 0.85:
            self.qtbot.mouseDClick(v.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        else:
            v.setFocus()
            v.setCurrentIndex(index)
            self.qtbot.keyClick(v, self.rng.choice((Qt.Key.Key_Return, Qt.Key.Key_Down, Qt.Key.Key_End)))
        return f"item {v.objectName()} ({index.row()}, {index.column()})"

    def _actions(self) -> list[QAction]:
        return [a for a in self.window.findChildren(QAction) if a.objectName() and a.isEnabled()
                and a.objectName() not in NOT_BY_CHANCE]

    def trigger(self) -> str | None:
        actions = self._actions()
        if not actions:
            return None
        a = self.rng.choice(actions)
        name = a.objectName()  # a recent project's action goes with the menu it rebuilds
        self.touched[name] += 1
        a.trigger()
        return f"trigger {name}"

    def menu(self) -> str | None:
        """A menu of the menu bar (or one inside it: Recent Projects, Recent Runs) opened, and an item picked
        (`_answer_menu`): menus filled as they open are driven this way."""
        menus = [m for m in self.window.menuBar().findChildren(QMenu) if m.objectName() and m.isEnabled()]
        if not menus:
            return None
        m = self.rng.choice(menus)
        self.touched[m.objectName()] += 1
        self._opened = m
        m.popup(self.window.mapToGlobal(QPoint(40, 40)))
        return f"menu {m.objectName()}"

    def small_enough(self) -> bool:
        p = self.window.project
        return p.model.arch in SMALL_ARCHS and p.data.image_size <= 64

    def start(self) -> str | None:
        """Start, when the project can run on a small model; when it cannot, now and then the person gives up
        on the edits and opens a copy of the project that trains (answering "save changes?"), then starts."""
        w = self.window
        if w.is_running():
            return None
        if not (w.start_action.isEnabled() and self.small_enough()):
            if self.rng.random() > 0.25:
                return None
            copy = self.place["saves"] / "reopened.thaw.toml"
            shutil.copyfile(self.place["kept"], copy)
            if not w.open_path(copy):
                return "start (kept the edits)"
            try:
                self.qtbot.waitUntil(w.start_action.isEnabled, timeout=30_000)  # the data scanned
            except WaitTimeout:
                return "start (cannot start)"
        self.qtbot.mouseClick(w.findChild(QAbstractButton, "startRunButton"), Qt.MouseButton.LeftButton)
        return "start"

    def run_control(self) -> str | None:
        buttons = [b for b in self._visible(QAbstractButton) if b.objectName() in RUN_BUTTONS - {"startRunButton"}]
        if not buttons:
            return None
        b = self.rng.choice(buttons)
        self.qtbot.mouseClick(b, Qt.MouseButton.LeftButton)
        return f"run_control {b.objectName()}"

    def arch(self) -> str | None:
        search = self.window.findChild(QLineEdit, "modelSearch")
        if not search.isVisible() or not search.isEnabled():
            return None
        name = self.rng.choice(SMALL_ARCHS)
        self.enter(search, name)
        return f"arch {name}"

    def drop(self) -> str | None:
        path = self.rng.choice(self.drops())
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(path)])
        where = QPoint(self.window.width() // 2, self.window.height() // 2)
        enter = QDragEnterEvent(where, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(self.window, enter)
        if enter.isAccepted():
            QApplication.sendEvent(self.window, QDropEvent(where, Qt.DropAction.CopyAction, mime,
                                                           Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
        return f"drop {Path(path).name}"

    def wait(self) -> str:
        self.qtbot.wait(self.rng.choice((0, 5, 20, 100)))
        return "wait"

    # ---------------------------------------------------------------- what it types, picks and drops

    def _texts(self) -> dict[str, tuple[list[str], list[str]]]:
        """objectName -> (values the project takes, values it refuses or that make the project unable to run)."""
        pl = {k: str(v) for k, v in self.place.items()}
        bad_numbers = ["", "-1", "abc", "1e400", "nan", "3.7e"]
        return {
            "epochs": (["1", "2", "3", "100"], ["0", "-3", "abc", ""]),
            "batchSize": (["1", "4", "8", "64"], ["0", "x"]),
            "learningRate": (["0.01", "0.001", "1e-3"], bad_numbers + ["0"]),
            "backboneLrMult": (["0", "0.1", "1"], bad_numbers), "weightDecay": (["0", "0.0001"], bad_numbers),
            "labelSmoothing": (["0", "0.1"], bad_numbers + ["1"]),
            "earlyStopPatience": (["0", "1", "2"], ["3.7", "-1"]), "seed": (["0", "1", "42"], ["-1", "x"]),
            "valFraction": (["0.2", "0.25", "0.5"], bad_numbers + ["0", "1"]),
            "testFraction": (["0", "0.2"], bad_numbers + ["0.9"]),
            "imageSize": (["16", "32", "48", "64"], ["8", "2048", "big"]),
            "headHidden": (["8", "16, 8", "256"], ["", "65536, 65536", "0", "a, b"]),
            "headDropout": (["0", "0.2"], bad_numbers + ["1"]),
            "trainSource": ([pl["train"], pl["csv"]], [pl["missing"], pl["png"], "", pl["train"] + "/circle"]),
            "valSource": (["", pl["val"]], [pl["train"], pl["missing"]]),
            "testSource": (["", pl["val"]], [pl["missing"], pl["train"]]),
            "outDir": (["runs", pl["out"]], [pl["train"] + "/runs", pl["png"] + "/x", ""]),
            "weightsFile": ([], [pl["missing"], pl["png"], ""]),
            "modelSearch": (list(SMALL_ARCHS), ["zzz", ""]),
        }

    def drops(self) -> list[str]:
        pl = self.place
        return [str(pl[k]) for k in ("train", "csv", "project", "bad_project", "png", "missing")]

    def _dialog_choice(self, dialog: QFileDialog) -> str | None:
        pl = self.place
        if dialog.acceptMode() == QFileDialog.AcceptMode.AcceptSave:
            pool = [pl["saves"] / f"saved-{self.rng.randrange(5)}.thaw.toml"]
        elif dialog.fileMode() == QFileDialog.FileMode.Directory:  # data, and run folders (Open Run, Continue)
            p = self.window.project
            runs = sorted(p.resolve(p.train.out_dir).glob("*")) + sorted(pl["project"].parent.glob("runs/*"))
            pool = [pl["train"], pl["val"], pl["missing"], *runs[-3:]]
        else:
            pool = [pl["project"], pl["bad_project"], pl["csv"], pl["png"]]
        return str(self.rng.choice(pool)) if self.rng.random() < 0.7 else None

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Show:
            if isinstance(obj, QFileDialog):
                choice = self._dialog_choice(obj)
                self.done["dialog"] += 1
                QTimer.singleShot(0, obj, lambda: self._answer_dialog(obj, choice))
                QTimer.singleShot(3000, obj, lambda: self._give_up(obj))
            elif isinstance(obj, QMenu) and (obj.objectName() == "layerMenu" or obj is getattr(self, "_opened", None)):
                QTimer.singleShot(0, obj, lambda: self._answer_menu(obj))
            elif isinstance(obj, QMessageBox) and isinstance(obj.parent(), QFileDialog):  # "replace the file?"
                QTimer.singleShot(0, obj, lambda: self._answer_box(obj, obj.parent()))
        return False

    def _answer_dialog(self, dialog: QFileDialog, choice: str | None) -> None:
        if choice is None:
            dialog.reject()
            return
        dialog.selectFile(choice)
        dialog.accept()  # Qt's own dialog may stay open (a selection its model has not listed yet): `_give_up`

    @staticmethod
    def _give_up(dialog: QFileDialog) -> None:
        """The person cancels a file dialog still open after their answer, as they would."""
        if dialog.isVisible() and not any(box.isVisible() for box in dialog.findChildren(QMessageBox)):
            dialog.reject()

    def _answer_box(self, box: QMessageBox, dialog: QFileDialog) -> None:
        """The file dialog's own question ("replace the file?"): Yes, or No and then Cancel in the file dialog
        (it stays open after a No). Its notice (a folder that does not exist): OK, then Cancel."""
        yes = box.button(QMessageBox.StandardButton.Yes)
        if yes is not None and self.rng.random() < 0.5:
            yes.click()
            return
        (box.button(QMessageBox.StandardButton.No) or box.buttons()[0]).click()
        QTimer.singleShot(0, dialog, dialog.reject)

    def _answer_menu(self, menu: QMenu) -> None:
        self._opened = None
        items = [a for a in menu.actions() if a.isEnabled() and not a.isSeparator() and a.menu() is None
                 and a.objectName() not in NOT_BY_CHANCE]
        if items and self.rng.random() < 0.8:
            a = self.rng.choice(items)
            self.touched[a.objectName() or a.text()] += 1
            a.trigger()
        menu.close()
