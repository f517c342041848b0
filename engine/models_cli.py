"""The model zoo on the command line: ``python main.py fetch-weights ARCH`` gets an architecture's pretrained
weights onto this machine, when asked; ``models --timm`` lists timm's models.

Downloads torchvision's file (or, with ``--from``, a mirror's) into the torch hub cache with a progress line and
the time left, or with ``--file`` imports one downloaded elsewhere; either way checked by its hash and by
loading before it is kept (`engine.model.pretrained`). Ctrl-C cancels and leaves nothing behind (exit 130).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TextIO

from engine.io.download import Cancelled, Progress
from engine.wording import transfer


def add_parser(sub: argparse._SubParsersAction) -> None:
    fetch = sub.add_parser("fetch-weights", help="download (or import) an architecture's pretrained weights")
    fetch.add_argument("arch", nargs="?", help="the architecture, e.g. resnet50 (optional with --file: the file's "
                       "hash says whose it is)")
    fetch.add_argument("--from", dest="source", metavar="URL", help="download from this URL (a mirror) instead "
                       "of torchvision's")
    fetch.add_argument("--file", metavar="PATH", help="import this downloaded file instead of downloading")


class _Bar:
    """Progress on the terminal: one updating line on a TTY, a line per tenth otherwise."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.name, self.stream, self.tty, self.tenth = name, stream, stream.isatty(), -1

    def __call__(self, p: Progress) -> None:
        text = f"{self.name}  {transfer(p.done, p.total, p.bytes_per_second, p.eta_seconds)}"
        if self.tty:
            self.stream.write("\r" + text.ljust(79))
        elif p.total and int(10 * p.done / p.total) > self.tenth:
            self.tenth = int(10 * p.done / p.total)
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")


def cmd_fetch_weights(args: argparse.Namespace) -> int:
    from engine.errors import ThawError
    from engine.model import pretrained, zoo

    if not args.arch and not args.file:
        raise ThawError("name the architecture (python main.py fetch-weights resnet50), or give --file")
    if args.file and args.source:
        raise ThawError("--file imports a file already here; --from downloads: choose one")
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set()) if in_main else None
    bar = _Bar(args.file or zoo.pretrained_path(args.arch).name, sys.stdout)
    try:
        if args.file:
            print(f"checking {args.file}")
            arch, target = pretrained.import_file(args.file, args.arch, progress=bar, stop=stop)
            bar.end()
            print(f"{arch}'s pretrained weights are in {target}")
            return 0
        target = zoo.pretrained_path(args.arch)
        if target.is_file() and not args.source:
            print(f"{args.arch}'s pretrained weights are already on this machine: {target}")
            return 0
        print(f"downloading {args.source or pretrained.url(args.arch)}")
        pretrained.fetch(args.arch, progress=bar, stop=stop, source=args.source)
        bar.end()
        print(f"checked and kept: {target}")
        return 0
    except Cancelled as exc:
        bar.end()
        print(str(exc), file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


def print_timm_models() -> None:
    """timm's pretrained models: name, parameters, whether the weights are on this machine, family."""
    from engine.model import timm_zoo, zoo

    if not timm_zoo.available():
        print("timm is not installed: pip install \".[timm]\" lists its models here")
        return
    repos = timm_zoo.cached_repos()
    names = zoo.list_architectures(timm=True)[len(zoo.list_architectures()):]
    print(f"\n{'timm model':<52} {'params':>8}  {'offline':<7}  family")
    for name in names:
        n = timm_zoo.num_params(name)
        params = f"{n / 1e6:.1f}M" if n else "?"
        cached = timm_zoo.weights_file(name, repos) is not None
        print(f"{name:<52} {params:>8}  {'yes' if cached else 'no':<7}  {timm_zoo.family(name)}")
    print(f"{len(names)} timm models; their weights are read from {timm_zoo.hf_cache_dir()} (never downloaded)")
