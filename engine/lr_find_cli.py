"""``python main.py lr-find PROJECT``: the learning-rate finder (`engine.train.lr_finder`) from the terminal.
Exit 0 with suggestions, 2 for an invalid project (nothing run), 1 when the sweep fails, 130 on Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from engine.errors import DataError, ThawError
from engine.wording import training_failed


def add_lr_find(sub) -> None:
    finder = sub.add_parser("lr-find", help="suggest a learning rate: a short sweep from tiny to huge rates")
    finder.add_argument("project", help="a *.thaw.toml project file")
    finder.add_argument("--json", action="store_true", help="print the sweep and its suggestions as JSON")
    finder.add_argument("--start", type=float, default=1e-7, help="the first rate (default 1e-7)")
    finder.add_argument("--end", type=float, default=10.0, help="the last rate (default 10)")
    finder.add_argument("--steps", type=int, default=100, help="optimizer steps of the sweep (default 100)")
    finder.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a setting, e.g. --set freeze.preset=full (repeatable)")


def cmd_lr_find(args: argparse.Namespace) -> int:
    from engine import project as proj
    from engine.preflight import raise_first
    from engine.train.lr_finder import find_lr

    if not (0 < args.start < args.end) or args.steps < 6:
        raise DataError("--start must be above 0 and below --end, and --steps at least 6")
    project = proj.apply_overrides(proj.load(args.project), args.overrides)
    raise_first(project)
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set()) if in_main else None
    try:
        result = find_lr(project, start=args.start, end=args.end, steps=args.steps, stop=stop)
    except ThawError:
        raise  # main says what is wrong (exit 2)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # failed while sweeping
        print(f"error: {training_failed(exc)}", file=sys.stderr)
        return 1
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if result.ended == "stopped":
        print("stopped: no suggestion", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
        return 0
    where = "cached features" if result.feature_cache else project.model.arch
    ended = {"done": "", "diverged": f"; stopped where the loss diverged, at {result.lrs[-1]:.2g}",
             "not a number": f"; stopped where the loss was not a number, at {result.lrs[-1]:.2g}"}[result.ended]
    print(f"swept {len(result.lrs)} learning rates from {args.start:g} to {args.end:g} on {where} in "
          f"{result.seconds:.1f} s{ended}")
    for note in result.notes:
        print(f"note: {note}")
    s = result.suggestions
    if s["valley"] is None:
        print("no suggestion: too few points survived; try more --steps")
        return 1
    print(f"suggested learning rates (a starting point; train.lr is {project.train.lr:g} now):")
    for name, why in (("valley", "the default"), ("steepest", "where the loss falls fastest"),
                      ("minimum", "a tenth of the lowest loss's rate"), ("slide", "fastai's slide rule")):
        print(f"  {name:<9} {s[name]:.2e}  ({why})")
    print(f"use it: python main.py train {args.project} --set train.lr={s['valley']:.2g}")
    return 0
