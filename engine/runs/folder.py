"""A run folder: where one training run leaves its results.

    <out_dir>/<project name>-<YYYYmmdd-HHMMSS>/   (`engine.runs.naming`; taken by `engine.runs.claim`)
        project.thaw.toml   the project as run (overrides applied, paths made absolute)
        labels.json         class names in output order
        metrics.csv         epoch,split,loss,accuracy,lr,seconds (rewritten after every epoch)
        activity.csv        step,epoch,block,trained,grad_norm,update_ratio: which layers learned (`activity_file`)
        model.safetensors   state dict of the kept model (best by validation accuracy); none before epoch 1
        summary.json        the run's figures and the skipped files
        evaluation.json     the kept model on the test split (else the validation split): every figure
        predictions.csv     ... and its prediction for each of those images (`engine.results.evaluation`)
        checkpoint.safetensors  the loop's state after the last completed epoch (`resume` continues from it, on
                            the run's classes and split, both kept in it);
                            removed when the run finishes (or stops early): only a stopped or crashed run
                            has anything to continue, and the file is 3-4x the model's size
        events.jsonl        every event of the run as it went, one JSON object a line (`engine.runs.events_file`)
        .lock               locked while a process trains here (`engine.runs.lock`): one run at a time;
                            removed when the run ends

Every file is written under a temporary name and renamed, so a crash never leaves a half-written one
(events.jsonl is appended to, a whole line at a time). The folder is taken (made and locked) before the data is
scanned or the model built, so no other run can pick it meanwhile; a run rejected during its set-up removes it
again, leaving nothing behind.

Under torchrun (`world`) rank 0 alone chooses, locks and writes the folder, as a single process does; the
other ranks train beside it (`fit` with the same `world`) and learn from it what they need (the folder's
name, the checkpoint to resume), so the folder holds the same files as a single process's run.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from safetensors.torch import save_file

from engine import events as ev
from engine import project as proj
from engine.distributed.world import World
from engine.errors import CheckpointError, ProjectError, ThawError
from engine.io.atomic import atomic_path, write_text_atomic
from engine.io.space import write_problem
from engine.project import Project
from engine.results.evaluation import PREDICTIONS_FILE, REPORT_FILE, evaluate
from engine.results.predict import load_run
from engine.runs import checkpoint, events_file
from engine.runs.activity_file import FILENAME as ACTIVITY_FILE
from engine.runs.activity_file import ActivityFile
from engine.runs.claim import Claim, claim
from engine.runs.events_file import EventsFile
from engine.runs.lock import RunLock
from engine.runs.naming import free_folder, reserve_folder
from engine.train.feature_cache import FeatureStore
from engine.train.loop import Callback, FitResult, fit

METRICS_HEADER = ("epoch", "split", "loss", "accuracy", "lr", "seconds")
OUTPUTS = ("project.thaw.toml", "labels.json", "metrics.csv", "model.safetensors", "summary.json",
           checkpoint.FILENAME, REPORT_FILE, PREDICTIONS_FILE, events_file.FILENAME, ACTIVITY_FILE)


def default_run_dir(project: Project, now: float | None = None) -> Path:
    """A free run folder name under ``train.out_dir`` (`engine.runs.naming.free_folder`), to show before a run;
    `train` takes its own with `engine.runs.claim`."""
    return free_folder(project.resolve(project.train.out_dir).absolute(), project.name, now)


def reserve_run_dir(project: Project, now: float | None = None) -> Path:
    """A new, empty run folder under ``train.out_dir``, made now (`engine.runs.naming.reserve_folder`): for a
    run handed on to other processes, whose rank 0 takes it."""
    return reserve_folder(project.resolve(project.train.out_dir).absolute(), project.name, now)


def metrics_csv(history: Iterable[ev.EpochEnded]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(METRICS_HEADER)
    for e in history:
        w.writerow([e.epoch, "train", _num(e.train_loss), _num(e.train_accuracy), _num(e.lr),
                    _num(e.train_seconds)])
        w.writerow([e.epoch, "val", _num(e.val_loss), _num(e.val_accuracy), _num(e.lr), _num(e.val_seconds)])
    return buf.getvalue()


def _num(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.6g}"


class RunRecorder(ev.Handler):
    """A callback that writes the run's first files when training starts and rewrites metrics.csv every epoch.
    The folder and its lock are already taken (`engine.runs.claim`, or `resume`); making and locking them here
    again changes nothing then. `history`: the epochs of a resumed run so far, kept at the top of metrics.csv."""

    def __init__(self, project: Project, run_dir: Path, lock: RunLock,
                 history: Iterable[ev.EpochEnded] = ()) -> None:
        self.project = project
        self.run_dir = run_dir
        self.lock = lock
        self.history: list[ev.EpochEnded] = list(history)

    def on_fit_started(self, event: ev.FitStarted) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        proj.save(resolved(self.project), self.run_dir / "project.thaw.toml")
        write_text_atomic(self.run_dir / "labels.json", json.dumps(list(event.classes), indent=2) + "\n")
        write_text_atomic(self.run_dir / "metrics.csv", metrics_csv(self.history))

    def on_epoch_ended(self, event: ev.EpochEnded) -> None:
        self.history.append(event)
        write_text_atomic(self.run_dir / "metrics.csv", metrics_csv(self.history))


def resolved(project: Project) -> Project:
    """A copy with every path made absolute, so the run's project file works from anywhere."""
    out = project.copy()
    for key in proj.PATH_KEYS:
        value = project.get(key)
        if value and value not in ("pretrained", "none"):
            out.set(key, str(project.resolve(value).resolve()))
    return out


def as_run(project: Project, folder: Path) -> Project:
    """The project as run in `folder`: paths absolute, and ``train.out_dir`` the folder the run folder is in
    (also for ``--out``, so the setting it replaced is neither checked nor recorded)."""
    out = resolved(project)
    out.train.out_dir = str(folder.parent)
    return out


def save_outputs(run_dir: Path, result: FitResult, callbacks: Iterable[Callback] = ()) -> None:
    """The model's state dict (same keys as ``model.state_dict()``) and summary.json; then, for a run with
    nothing left to continue (it finished or stopped early), the checkpoint goes. A run that completed no epoch
    has no trained model: none is written (untrained weights would only look like a result), and it says so."""
    if result.history:
        state = {k: v.detach().cpu().contiguous().clone() for k, v in result.model.state_dict().items()}
        with atomic_path(run_dir / "model.safetensors") as tmp:
            save_file(state, str(tmp), metadata={"classes": json.dumps(result.classes)})
    else:
        for cb in callbacks:
            cb(ev.LogMessage(f"stopped before its first epoch ended: no model was saved (nothing was trained); "
                             f"{run_dir} keeps the settings and the summary", "warning"))
    summary = dict(result.summary, run_dir=str(run_dir))
    write_text_atomic(run_dir / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    if not result.stopped_by_user:
        checkpoint.path_in(run_dir).unlink(missing_ok=True)


def evaluate_kept(run_dir: Path, project: Project, result: FitResult, callbacks: Iterable[Callback],
                  stop: threading.Event | None) -> None:
    """The kept model on the run's test split (else its validation split): evaluation.json and predictions.csv
    in the run folder. A failure here is a warning: the run and its model are kept."""
    def say(text: str, level: str = "info") -> None:
        for cb in callbacks:
            cb(ev.LogMessage(text, level))

    data = result.data
    if data is None or not result.history:
        return
    if stop is not None and stop.is_set():
        say(f"stopped: not evaluated; python main.py evaluate {run_dir} does it later")
        return
    d = project.data
    test = getattr(data, "test", None)
    split, held, source = ("test", test, d.test or d.train) if test is not None and len(test) else (
        "validation", data.val, d.val or d.train)
    say(f"evaluating the kept model on {len(held)} {split} images")
    try:
        trained = load_run(run_dir, device=result.summary.get("device"))
        done = evaluate(trained, held.samples, split=split, source=str(project.resolve(source)), folder=run_dir,
                        stop=stop, decoded=held)
    except (ThawError, OSError) as exc:
        say(f"the {split} evaluation failed: {exc}", "warning")
        return
    if done is not None:
        r = done.report
        say(f"{split} accuracy {r['accuracy']:.1%}, macro F1 {r['averages']['macro']['f1']:.3f}, calibration "
            f"error {r['calibration']['ece']:.3f}: {REPORT_FILE} and {PREDICTIONS_FILE} in {run_dir}")


def train(project: Project, run_dir: str | os.PathLike | None = None, *, callbacks: Iterable[Callback] = (),
          stop: threading.Event | None = None, world: World | None = None,
          feature_store: FeatureStore | None = None) -> tuple[Path, FitResult]:
    """Run `project` into a run folder (default: a new one under ``train.out_dir``; `engine.runs.claim` takes
    it first) and save its outputs. A `feature_store` lends a frozen backbone's features from earlier runs
    (`engine.train.loop.fit`).

    Also after a stop request: what was trained so far is saved. Invalid projects, unusable data and an
    unwritable or taken folder raise a `ThawError` before anything is trained or written. Under torchrun every
    rank calls it with its `world`; rank 0 takes and writes the folder.
    """
    world = world or World()
    taken: list[Claim] = []

    def take() -> Path:
        taken.append(claim(project, run_dir))
        return taken[0].folder

    folder = world.main_does(take)
    project = as_run(project, folder)
    if not world.is_main:
        return folder, fit(resolved(project), callbacks=callbacks, stop=stop, run_dir=str(folder), world=world)
    events = EventsFile(folder)
    try:
        result = fit(resolved(project), callbacks=[RunRecorder(project, folder, taken[0].lock), ActivityFile(folder),
                                                   events, *callbacks],
                     stop=stop, run_dir=str(folder), checkpoints=checkpoint.CheckpointFile(folder), world=world,
                     feature_cache=feature_store if feature_store is not None else True)
        save_outputs(folder, result, [events, *callbacks])
        evaluate_kept(folder, resolved(project), result, [events, *callbacks], stop)
    finally:
        events.flush()
        taken[0].release()
    return folder, result


def _reopen(project: Project, folder: Path, lock: RunLock) -> checkpoint.Checkpoint:
    """Lock the run folder and read its checkpoint, checking that `project` is the run's."""
    if folder.is_dir():  # else reading the checkpoint says what is missing
        problem = write_problem(folder)
        if problem:
            raise CheckpointError(f"cannot write to the run folder {folder}: {problem}")
        lock.acquire()  # before reading or changing anything: another process may be training here
    saved = checkpoint.read(folder)
    changed = checkpoint.differences(saved.meta["project"], proj.to_dict(resolved(project)))
    if changed:
        raise ProjectError("--resume", f"the project's settings differ from the run in {folder}: "
                           f"{'; '.join(changed[:5])}. Resume with the run's own project file "
                           f"{folder / 'project.thaw.toml'}")
    for name in OUTPUTS:  # temporary files of writes a crash interrupted
        for stale in folder.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)
    return saved


def resume(project: Project, run_dir: str | os.PathLike, *, callbacks: Iterable[Callback] = (),
           stop: threading.Event | None = None, world: World | None = None,
           feature_store: FeatureStore | None = None) -> tuple[Path, FitResult]:
    """Continue the run in `run_dir` from its checkpoint, in the same folder, as if it had not stopped.

    `project` must have the run's settings (its own ``project.thaw.toml`` has them; only the device, the
    mixed-precision switch, the name and the output folder may differ). A missing or damaged checkpoint is
    a `CheckpointError`, other settings a `ProjectError` listing them, both before anything is trained. Under
    torchrun rank 0 reads the checkpoint and hands it to the other ranks (their machines need not see the
    folder); the number of processes may differ from the run's.
    """
    world = world or World()
    folder = Path(run_dir).expanduser().absolute()
    project = as_run(project, folder)
    lock = RunLock(folder)
    try:
        saved = world.main_does(lambda: _reopen(project, folder, lock))
        if not world.is_main:
            return folder, fit(resolved(project), callbacks=callbacks, stop=stop, run_dir=str(folder),
                               resume_from=saved, world=world)
        recorder, events = RunRecorder(project, folder, lock, history=saved.history), EventsFile(folder)
        kept = ActivityFile(folder, epochs_kept=saved.epoch)  # the rows of the epochs the checkpoint holds
        try:
            result = fit(resolved(project), callbacks=[recorder, kept, events, *callbacks], stop=stop,
                         run_dir=str(folder), checkpoints=checkpoint.CheckpointFile(folder), resume_from=saved,
                         world=world, feature_cache=feature_store if feature_store is not None else True)
            save_outputs(folder, result, [events, *callbacks])
            evaluate_kept(folder, resolved(project), result, [events, *callbacks], stop)
        finally:
            events.flush()
    finally:
        lock.release()
    return folder, result
