"""A transfer study: one project trained several ways on the same images and seeds, one run after another.

    <study folder>/
        study.json          the settings, each seed's advice and every run's result (rewritten after each run)
        study.md            the table (`engine.study.table`) and links to the runs
        splits/seed<S>/     the images of each seed as CSV lists: train.csv (or train-<K>.csv, K per class),
                            val.csv and test.csv where the project splits them off its training images
        runs/<cell>-<recipe>/   ordinary run folders (`engine.runs.folder`)

A *cell* is one seed and one "images per class" subset: every recipe of a cell trains on its images from
its `train.seed`. The advisor is asked once per cell, and its pick is run there if the recipes lack it.
A frozen backbone's features are computed once for the whole study (`FeatureStore`). Stopped (or crashed),
the same call with the same folder continues: finished runs are kept, a stopped one resumes from its
checkpoint.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import events as ev
from engine import project as proj
from engine.advice.rule import Advice, advise
from engine.data import Sample
from engine.errors import ProjectError, ThawError
from engine.io.atomic import write_text_atomic
from engine.model.assemble import skeleton
from engine.model.checklist import Checklist
from engine.preflight import raise_first
from engine.project import Project
from engine.runs import checkpoint
from engine.runs import folder as runs
from engine.runs.claim import holds_untrained_run
from engine.study import recipes as rc
from engine.study.table import markdown, tables
from engine.train.feature_cache import FeatureStore
from engine.train.loop import project_data

STUDY_FILE, TABLE_FILE = "study.json", "study.md"
VERSION = 1
FREE = ("name", "train.out_dir", "train.device", "train.amp")  # may differ when a study is continued, as for a run


@dataclass(frozen=True)
class Settings:
    recipes: list[str] | None = None  # None: `recipes.default` around the advisor's pick on the first cell
    seeds: int = 3  # train.seed, train.seed + 1, ...: a spread and a paired difference need more than one
    per_class: tuple[int | None, ...] = (None,)  # None: all the training images


@dataclass(frozen=True)
class Progress:
    done: int  # runs finished
    total: int
    fraction: float  # of the whole study, the current run's epochs included
    current: str  # what runs now, in words
    eta_seconds: float | None


def default_folder(project: Project) -> Path:
    """``<train.out_dir>/<name>-study-<timestamp>`` (-2, -3... if taken), as a run folder is named."""
    named = project.copy()
    named.name = f"{project.name}-study"
    return runs.default_run_dir(named)


def blocks_of(project: Project) -> int:
    """The blocks of the project's model, as the layer checklist counts them (built without weights)."""
    built = skeleton(project, 2, freeze=False)
    return len(Checklist(built.model, built.head_paths).blocks)


def _csv(samples: list[Sample], classes: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("path", "label"))
    w.writerows((s.path, classes[s.label]) for s in samples)
    return buf.getvalue()


def subset(samples: list[Sample], per_class: int, seed: int) -> list[Sample]:
    """`per_class` images of each class (all of a class that has fewer), drawn with `seed`."""
    rng = np.random.default_rng([seed, per_class])
    out: list[Sample] = []
    for label in sorted({s.label for s in samples}):
        group = sorted((s for s in samples if s.label == label), key=lambda s: s.path)
        chosen = rng.choice(len(group), size=min(per_class, len(group)), replace=False)
        out += [group[i] for i in sorted(chosen)]
    return out


class Study:
    """One study folder: its state, and the runs it still has to do."""

    def __init__(self, project: Project, folder: str | Path, settings: Settings = Settings(),
                 extra: dict[str, list[str]] | None = None, source: str = "") -> None:
        """`extra`: more overrides per recipe name (the benchmark's own settings for scratch)."""
        self.project = runs.resolved(project)
        self.folder = Path(folder).expanduser().absolute()
        self.settings = settings
        self.extra = extra or {}
        self.store = FeatureStore()
        self.blocks = blocks_of(self.project)
        if settings.recipes is not None:
            rc.parse(",".join(settings.recipes), self.blocks)
        if project.model.weights == "none" and settings.recipes != ["scratch"]:
            raise ProjectError("model.weights", "the project starts from random weights, and a transfer study "
                                                "compares ways of using pretrained ones; choose pretrained weights "
                                                "or a weights file")
        self.state = self._load(source)

    # ------------------------------------------------------------ the state on disk

    def _load(self, source: str) -> dict[str, Any]:
        path = self.folder / STUDY_FILE
        wanted = {"project": _studied(self.project), "seeds": [self.project.train.seed + i
                                                                    for i in range(self.settings.seeds)],
                  "per_class": list(self.settings.per_class)}
        if path.is_file():
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ThawError(f"cannot read {path}: {exc}; choose another folder with --out") from None
            saved = state.get("settings", {})
            if state.get("version") != VERSION or any(saved.get(k) != v for k, v in wanted.items()) or (
                    self.settings.recipes is not None and saved.get("recipes") != self.settings.recipes):
                raise ThawError(f"{self.folder} holds a study of other settings; continue it with its own, or "
                                "choose another folder with --out")
            return state
        if self.folder.exists() and (not self.folder.is_dir() or any(self.folder.iterdir())):
            raise ThawError(f"{self.folder} exists and is not an empty folder; choose another with --out")
        cells = [{"name": f"{'all' if k is None else f'{k}-per-class'}-seed{s}", "per_class": k, "seed": s,
                  "advice": None, "runs": {}} for k in self.settings.per_class for s in wanted["seeds"]]
        return {"version": VERSION, "project": source or self.project.name, "project_name": self.project.name,
                "folder": str(self.folder), "settings": {**wanted, "recipes": self.settings.recipes}, "cells": cells}

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state["tables"] = tables(self.state) if self.state["settings"]["recipes"] else []
        write_text_atomic(self.folder / STUDY_FILE, json.dumps(self.state, indent=1) + "\n")
        write_text_atomic(self.folder / TABLE_FILE, markdown(self.state))

    # ------------------------------------------------------------ the images of a cell

    def _splits(self, seed: int) -> dict[str, list[Sample] | str]:
        """The seed's train, val and test images (val and test kept as the project's paths where it names them)."""
        data = project_data(proj.apply_overrides(self.project, [f"train.seed={seed}"]))
        d = self.project.data
        out: dict[str, Any] = {"classes": data.classes, "train": data.train.samples,
                               "val": d.val or data.val.samples}
        out["test"] = d.test or (data.test.samples if data.test is not None else "")
        return out

    def cell_project(self, cell: dict[str, Any]) -> Project:
        """The project on the cell's images and seed, its other settings as given."""
        folder = self.folder / "splits" / f"seed{cell['seed']}"
        split = self._splits(cell["seed"])
        classes = split["classes"]
        train = split["train"] if cell["per_class"] is None else subset(split["train"], cell["per_class"], cell["seed"])
        p = self.project.copy()
        for key, name, samples in (("data.train", f"train-{cell['per_class'] or 'all'}.csv", train),
                                   ("data.val", "val.csv", split["val"]), ("data.test", "test.csv", split["test"])):
            if isinstance(samples, list):
                folder.mkdir(parents=True, exist_ok=True)
                write_text_atomic(folder / name, _csv(samples, classes))
                samples = str(folder / name)
            p.set(key, samples)
        p.set("data.test_fraction", 0.0)
        p.set("train.seed", cell["seed"])
        return p

    # ------------------------------------------------------------ running

    def run(self, *, progress: Callable[[Progress], None] | None = None, callbacks: Iterable[Any] = (),
            stop: threading.Event | None = None) -> dict[str, Any]:
        """Run what is left; returns the state (also on a stop, with what is done). A `ThawError` of a run
        (bad data, a model that cannot be built) ends the study with the state saved."""
        stop = stop or threading.Event()
        raise_first(self.project)
        self.save()
        seconds: dict[str, list[float]] = {}
        for cell in self.state["cells"]:
            if stop.is_set():
                break
            if cell["advice"] is not None and all(r.get("accuracy") is not None for r in cell["runs"].values()):
                continue
            project = self.cell_project(cell)
            if cell["advice"] is None:
                self._advise(cell, project, stop)
                if stop.is_set():
                    break
            for name, run in cell["runs"].items():
                if stop.is_set() or run.get("accuracy") is not None:
                    continue
                self._report(progress, cell, name, 0.0, seconds)
                elapsed = self._run_one(project, cell, name, run, callbacks, stop, progress, seconds)
                seconds.setdefault(name, []).append(elapsed)
                self.save()
        self.save()
        return self.state

    def _advise(self, cell: dict[str, Any], project: Project, stop: threading.Event) -> None:
        advice: Advice = advise(project, stop)
        pick = rc.name_of(advice.plan)
        cell["advice"] = {"recipe": pick, "label": advice.plan.label, "evidence": advice.evidence,
                          "task_share": advice.task_share,
                          "depths": [vars(d) for d in advice.measured.depths] if advice.measured else []}
        s = self.state["settings"]
        if s["recipes"] is None:  # the study's recipes, from the first cell's advice
            s["recipes"] = rc.default(self.blocks, advice.plan)
        for name in [*s["recipes"], pick]:
            if name not in cell["runs"]:
                cell["runs"][name] = {"label": rc.plan_of(name, self.blocks, self.project.train.optimizer).label,
                                      "run_dir": str(self.folder / "runs" / f"{cell['name']}-{name}"),
                                      "accuracy": None, "seconds": 0.0, "extra": name not in s["recipes"]}
        self.save()

    def _run_one(self, project: Project, cell: dict[str, Any], name: str, run: dict[str, Any],
                 callbacks: Iterable[Any], stop: threading.Event, progress, seconds) -> float:
        plan = rc.plan_of(name, self.blocks, self.project.train.optimizer)
        p = proj.apply_overrides(project, [*plan.overrides(), *self.extra.get(name, [])])
        p.name = f"{self.project.name} {cell['name']} {name}"
        folder = Path(run["run_dir"])
        epochs = ev.Handler()
        epochs.on_epoch_ended = lambda e: self._report(progress, cell, name, e.epoch / e.epochs, seconds)
        start = time.perf_counter()
        has_checkpoint = checkpoint.path_in(folder).is_file()
        if not (folder / "summary.json").is_file() or has_checkpoint or holds_untrained_run(folder):
            go = runs.resume if checkpoint.path_in(folder).is_file() else runs.train
            go(p, folder, callbacks=[epochs, *callbacks], stop=stop, feature_store=self.store)
        elapsed = time.perf_counter() - start
        run["seconds"] += elapsed
        # finished, unless stopped: a stopped run keeps its checkpoint, or trained nothing (done again next time)
        if not checkpoint.path_in(folder).is_file() and not holds_untrained_run(folder):
            run.update(_result(folder))
        return elapsed

    def _report(self, progress, cell: dict[str, Any], name: str, within: float, seconds) -> None:
        if progress is None:
            return
        all_runs = [(c, n, r) for c in self.state["cells"] for n, r in c["runs"].items()]
        total = max(len(all_runs), len(self.state["cells"]) * len(self.state["settings"]["recipes"] or ()))
        done = sum(r.get("accuracy") is not None for _, _, r in all_runs)
        left = [n for _, n, r in all_runs if r.get("accuracy") is None]
        pooled = [x for xs in seconds.values() for x in xs]
        eta = None
        if pooled:
            each = {n: float(np.mean(seconds.get(n) or pooled)) for n in set(left)}
            eta = sum(each[n] for n in left) - within * each.get(name, 0.0)
        images = "all images" if cell["per_class"] is None else f"{cell['per_class']} per class"
        what = f"{images}, seed {cell['seed']}: {cell['runs'][name]['label']}"
        progress(Progress(done, total, (done + within) / total if total else 0.0, what, eta))


def _studied(project: Project) -> dict[str, Any]:
    """The project's settings that make the study what it is (`FREE` ones left out)."""
    out = proj.to_dict(project)
    for key in FREE:
        section, _, name = key.rpartition(".")
        (out[section] if section else out).pop(name)
    return out


def _result(folder: Path) -> dict[str, Any]:
    """A finished run's figures: its evaluation's accuracy (test, else validation), else its best validation."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ThawError(f"the run in {folder} left no readable summary.json ({exc})") from None
    out = {"best_val_accuracy": summary.get("best_val_accuracy"), "best_epoch": summary.get("best_epoch"),
           "feature_cache": summary.get("feature_cache")}
    try:
        report = json.loads((folder / "evaluation.json").read_text(encoding="utf-8"))
        out.update(accuracy=report["accuracy"], split=report["split"])
    except (OSError, ValueError, KeyError):
        out.update(accuracy=summary.get("best_val_accuracy"), split="validation")
    if out["accuracy"] is None:
        raise ProjectError("train.epochs", f"the run in {folder} finished no epoch")
    return out
