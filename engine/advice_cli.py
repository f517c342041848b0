"""``python main.py advise PROJECT`` and ``python main.py study PROJECT``: where to cut a pretrained network, measured,
and the transfer study that trains it several ways. Errors are `ThawError`s (exit 2); Ctrl-C ends with 130."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from engine.errors import ThawError
from engine.wording import clock

BAR = 12  # characters of the widest bar


def add_commands(sub) -> None:
    advise = sub.add_parser("advise", help="measure the features at each cut point and suggest a freeze plan")
    advise.add_argument("project", help="a *.thaw.toml project file")
    advise.add_argument("--json", action="store_true", help="print JSON instead of the table and the evidence")

    study = sub.add_parser("study", help="train a project several ways on the same images and seeds, and compare")
    study.add_argument("project", help="a *.thaw.toml project file")
    study.add_argument("--recipes", help="comma-separated: scratch, fe, last1, last2, ..., full (default: "
                                         "scratch,fe,last1,last2,full and the advisor's last N with its neighbours)")
    study.add_argument("--seeds", type=int, help="seeds per recipe, from train.seed on (default 3, as in the window)")
    study.add_argument("--per-class", default="all", help="images per class to train on, comma-separated, e.g. "
                                                          "5,10,all (default all)")
    study.add_argument("--out", help="the study folder (default: a new one under train.out_dir); an existing "
                                     "study folder is continued")


def bars(values: list[float]) -> list[str]:
    """Bars from the lowest value (one block) to the highest (`BAR` blocks): a comparison, not a scale."""
    lo, hi = min(values), max(values)
    return ["\u2588" * (1 + round((BAR - 1) * ((v - lo) / (hi - lo) if hi > lo else 1.0))) for v in values]


def cmd_advise(args: argparse.Namespace) -> int:
    from engine import project as proj
    from engine.advice.rule import advise

    project = proj.load(args.project)
    try:
        advice = advise(project, progress=None if args.json else lambda text: print(text, file=sys.stderr))
    except (KeyboardInterrupt, InterruptedError):
        print("interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(advice.to_dict(), indent=1))
        return 0
    m = advice.measured
    if m is not None:
        print(f"\n{project.model.arch}: {m.scored} training images of {len(m.classes)} classes scored, the probe "
              f"measured on {m.held_out} validation images, in {m.seconds:.1f} s\n")
        print(f"{'cut point':<30} {'trains':<16} {'dims':>6}  {'LogME':>7} {'':<{BAR}}  {'probe':>5}")
        for d, bar in zip(m.depths, bars([d.logme for d in m.depths]), strict=True):
            where = f"head's input ({d.after})" if d.trained == 0 else f"after {d.after}"
            trains = "the head" if d.trained == 0 else f"last {d.trained} block{'s' if d.trained > 1 else ''}"
            print(f"{where:<30} {trains:<16} {d.dims:>6}  {d.logme:>7.3f} {bar:<{BAR}}  {d.probe:>5.0%}")
        print()
    for line in advice.evidence:
        print(line)
    print(f"\n{advice.caveat}\n")
    for section, values in advice.plan.sections().items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"{key} = {json.dumps(value)}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from engine import project as proj
    from engine.study import recipes
    from engine.study.runner import TABLE_FILE, Settings, Study, blocks_of, default_folder

    seeds = Settings.seeds if args.seeds is None else args.seeds
    if seeds < 1:
        raise ThawError("--seeds must be 1 or more")
    project = proj.load(args.project)
    per_class = recipes.parse_per_class(args.per_class)
    names = recipes.parse(args.recipes, blocks_of(project)) if args.recipes else None
    folder = args.out or default_folder(project)
    study = Study(project, folder, Settings(names, seeds, per_class), source=str(args.project))
    stop = threading.Event()
    interrupts: list[int] = []

    def on_sigint(_sig: int, _frame: object) -> None:
        interrupts.append(1)
        if len(interrupts) > 1:
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping the current run and saving; the same command continues the study "
              "(Ctrl-C again to abort)", file=sys.stderr)

    shown: set[str] = set()

    def show(p) -> None:
        if p.current not in shown:  # a line per run, not per epoch
            shown.add(p.current)
            print(f"[{p.done}/{p.total}, ETA {clock(p.eta_seconds)}] {p.current}", file=sys.stderr)

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        study.run(progress=show, stop=stop)
    except KeyboardInterrupt:
        print("aborted; the finished runs are kept", file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    print((study.folder / TABLE_FILE).read_text(encoding="utf-8"))
    print(f"study saved in {study.folder}")
    return 130 if stop.is_set() else 0
