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
    """The layer tree with the project's freeze plan, built without weights (the counts do not need them)."""
    import json

    from engine import project as proj
    from engine.assemble import skeleton
    from engine.data import scan
    from engine.layers import describe, walk

    project = proj.load(args.project)
    classes = scan(project.resolve(project.data.train)).classes
    built = skeleton(project, len(classes))
    tree = describe(built.model, built.plan, built.head_paths)
    pct = 100.0 * tree.trainable_params / tree.total_params if tree.total_params else 0.0
    summary = f"trainable {tree.trainable_params:,} / total {tree.total_params:,} parameters ({pct:.1f}%)"
    if args.json:
        print(json.dumps({"arch": project.model.arch, "num_classes": len(classes), "image_size": built.image_size,
                          "head_paths": built.head_paths, "frozen": sorted(built.plan.frozen),
                          "train_frozen_bn": built.plan.train_frozen_bn, "notes": built.notes,
                          "trainable_params": tree.trainable_params, "total_params": tree.total_params,
                          "tree": tree.to_dict()}, indent=1))
        return 0
    print(f"{project.model.arch}: {len(classes)} classes, {built.image_size} px input   (* = block, H = new head)")
    for note in built.notes:
        print(f"note: {note}")
    for node in walk(tree):
        if not node.path:
            continue
        mark = "H" if node.is_head else ("*" if node.is_block else " ")
        indent = "  " * node.path.count(".")
        print(f"{mark} {indent}{node.name:<{max(1, 34 - len(indent))}} {node.type_name:<28} "
              f"{node.total_params:>13,}  {node.state}")
    print(summary)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """A table of every architecture; nothing is built or downloaded."""
    from engine import zoo

    print(f"{'name':<22} {'params':>8} {'top-1':>6}  {'offline':<7}  weights file")
    for name in zoo.list_architectures():
        info = zoo.arch_info(name)
        params = f"{info.num_params / 1e6:.1f}M" if info.num_params else "?"
        acc = f"{info.imagenet_acc1:.1f}" if info.imagenet_acc1 is not None else "-"
        print(f"{name:<22} {params:>8} {acc:>6}  {'yes' if info.weights_cached else 'no':<7}  {info.weights_file}")
    print(f"pretrained weights are read from {zoo.checkpoints_dir()} (never downloaded)")
    return 0
