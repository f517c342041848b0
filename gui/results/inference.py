"""The shown run's model at work off the GUI thread: the picture it sees of an image with its Grad-CAM map, and
its predictions for images someone drops on the window.

The model is loaded once (`engine.results.predict.load_run`), in the first job that needs it, and jobs run one
at a time in a `gui.tasks.Task`, since a model with a Grad-CAM hook on it must not run a prediction in another
thread meanwhile. Of several pictures asked for while one is being made, only the newest is made next (a
person clicking through images wants the last one). Pictures are kept for the last `KEEP` images asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from gui.tasks import Task, TaskState

KEEP = 24  # pictures (and maps) kept, each about a model input's size


class RunModel(QObject):
    """`explain(path, target, cam)` -> `explained(path, target, picture, heat | None)` (the PIL picture the
    model sees, its (H, W) map in [0, 1]); `predict(paths)` ->
    `predicted((Predictions, [(path, why)]))`; a failure -> `failed(what, message)`."""

    explained = Signal(str, int, object, object)
    predicted = Signal(object)
    failed = Signal(str, str)

    def __init__(self, run_dir: str | Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self._trained: Any = None  # the TrainedModel, once loaded (in a job's thread)
        self._jobs: list[tuple[str, Any]] = []
        self._task: Task | None = None
        self._pictures: OrderedDict[str, Any] = OrderedDict()
        self._maps: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self.closed = False

    # ------------------------------------------------------------ asking

    def explain(self, path: str, target: int, cam: bool) -> None:
        """The picture of `path` and, with `cam`, its Grad-CAM map for class `target`: from what is kept at once,
        else made in the background (a newer request replaces one still waiting)."""
        picture, heat = self._pictures.get(path), self._maps.get((path, target))
        if picture is not None and (heat is not None or not cam):
            self.explained.emit(path, target, picture, heat if cam else None)
            return
        self._jobs = [j for j in self._jobs if j[0] != "explain"]
        self._queue(("explain", (path, target, cam)))

    def predict(self, paths: list[str]) -> None:
        self._queue(("predict", list(paths)))

    def is_busy(self) -> bool:
        return self._task is not None

    def shutdown(self) -> None:
        """No more jobs; wait for the one running (the window is closing or shows another run)."""
        self.closed = True
        self._jobs.clear()
        if self._task is not None:
            self._task.request_interruption()
            self._task.join()

    # ------------------------------------------------------------ running

    def _queue(self, job: tuple[str, Any]) -> None:
        if self.closed:
            return
        self._jobs.append(job)
        if self._task is None:
            self._next()

    def _next(self) -> None:
        if not self._jobs or self.closed:
            return
        kind, args = self._jobs.pop(0)
        work: Callable[[TaskState], Any] = (lambda _s: self._explain(*args)) if kind == "explain" else (
            lambda _s: self._predict(args))
        self._task = task = Task(work, self, f"thaw-{kind}")
        task.returned.connect(lambda value, k=kind: self._returned(k, value))
        task.errored.connect(lambda exc, k=kind: self._errored(k, exc))
        task.finished.connect(self._finished)
        task.start()

    def _finished(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.deleteLater()
        self._next()

    def _model(self):
        if self._trained is None:
            from engine.results.predict import load_run

            self._trained = load_run(self.run_dir)
        return self._trained

    def _explain(self, path: str, target: int, cam: bool) -> tuple:
        from engine.io.images import open_image
        from engine.results.predict import explain

        trained = self._model()
        picture, heat = explain(trained, path, target) if cam else (trained.view(open_image(path)), None)
        return path, target, picture, heat

    def _predict(self, paths: list[str]) -> tuple:
        from engine.data import Sample
        from engine.results.predict import image_files, predict

        files, skipped = image_files(paths)
        predictions, failed = predict(self._model(), [Sample(str(f), -1) for f in files])
        return predictions, [*skipped, *failed]

    def _returned(self, kind: str, value: Any) -> None:
        if self.closed:
            return
        if kind == "predict":
            self.predicted.emit(value)
            return
        path, target, picture, heat = value
        _keep(self._pictures, path, picture)
        if heat is not None:
            _keep(self._maps, (path, target), heat)
        self.explained.emit(path, target, picture, heat)

    def _errored(self, kind: str, exc: BaseException) -> None:
        if not self.closed:
            self.failed.emit(kind, str(exc) or type(exc).__name__)


def _keep(kept: OrderedDict, key: Any, value: Any) -> None:
    kept[key] = value
    kept.move_to_end(key)
    while len(kept) > KEEP:
        kept.popitem(last=False)
