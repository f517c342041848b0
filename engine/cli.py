"""Headless commands: ``python main.py train|layers|models ...``. Exit 0 ok, 1 failed, 2 bad input, 130 Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from engine.errors import ThawError

COMMANDS = ("train", "layers", "models")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Thaw's headless commands.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a project file without the GUI")
    train.add_argument("project", help="a *.thaw.toml project file")
    train.add_argument("--out", help="run folder to write into (default: a new folder under train.out_dir)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a setting, e.g. --set train.epochs=3 (repeatable)")

    layers = sub.add_parser("layers", help="print the model's layer tree with the project's freeze plan")
    layers.add_argument("project", help="a *.thaw.toml project file")
    layers.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub.add_parser("models", help="list the architectures, their size, accuracy and offline weights")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "layers": cmd_layers, "models": cmd_models}[args.command]
    try:
        return handler(args)
    except ThawError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_train(args: argparse.Namespace) -> int:
    print("train: not built yet", file=sys.stderr)
    return 2


def cmd_layers(args: argparse.Namespace) -> int:
    print("layers: not built yet", file=sys.stderr)
    return 2


def cmd_models(args: argparse.Namespace) -> int:
    print("models: not built yet", file=sys.stderr)
    return 2
