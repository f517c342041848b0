"""Headless commands: ``python main.py train|layers|models|evaluate|predict|advise|study|lr-find|export|
fetch-weights ...``. Exit 0 ok, 1 failed, 2 bad input, 130 Ctrl-C. `evaluate` and `predict` are in
`engine.results_cli`, `advise` and `study` in `engine.advice_cli`, `lr-find` in `engine.lr_find_cli`, `export` in
`engine.export_cli`, `fetch-weights` in `engine.models_cli`."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from engine import events as ev
from engine import export_cli, models_cli
from engine.advice_cli import add_commands, cmd_advise, cmd_study
from engine.errors import ThawError
from engine.lr_find_cli import add_lr_find, cmd_lr_find
from engine.wording import clock, count, printable, training_failed

COMMANDS = ("train", "layers", "models", "evaluate", "predict", "advise", "study", "lr-find", "export",
            "fetch-weights")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Thaw's headless commands.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a project file without the GUI")
    train.add_argument("project", help="a *.thaw.toml project file")
    train.add_argument("--out", help="run folder to write into (default: a new folder under train.out_dir)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a setting, e.g. --set train.epochs=3 (repeatable)")
    several = train.add_argument_group("several processes (torchrun, DistributedDataParallel; docs/distributed.md)")
    several.add_argument("--nproc-per-node", type=int, metavar="N",
                         help="train in N processes on this machine, one per GPU (NCCL), or on the CPU (gloo)")
    several.add_argument("--nnodes", type=int, default=1, metavar="M", help="machines taking part (default 1)")
    several.add_argument("--node-rank", type=int, default=0, metavar="I", help="this machine's number, 0 to M-1")
    several.add_argument("--rdzv-endpoint", default="", metavar="HOST:PORT",
                         help="machine 0's address and a free port, the same on every machine")

    layers = sub.add_parser("layers", help="print the model's layer tree with the project's freeze plan")
    layers.add_argument("project", help="a *.thaw.toml project file")
    layers.add_argument("--json", action="store_true", help="print JSON instead of a table")

    models = sub.add_parser("models", help="list the architectures, their size, accuracy and offline weights")
    models.add_argument("--timm", action="store_true", help="also list timm's pretrained models (timm installed)")

    evaluate = sub.add_parser("evaluate", help="evaluate a run's model: per-class table, confusion, calibration")
    evaluate.add_argument("run_dir", help="a run folder (it holds model.safetensors)")
    evaluate.add_argument("--data", metavar="PATH", help="a labelled folder or CSV list (default: the run's test "
                          "split, else its validation split)")
    evaluate.add_argument("--json", action="store_true", help="print evaluation.json instead of the table")
    evaluate.add_argument("--device", help="where the model runs (default: the run's train.device)")

    predict = sub.add_parser("predict", help="the likeliest classes of images, by a run's model")
    predict.add_argument("run_dir", help="a run folder (it holds model.safetensors)")
    predict.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files, or folders of them")
    predict.add_argument("--top", type=int, default=5, help="how many classes per image (default 5)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of lines")
    predict.add_argument("--cam", metavar="OUT_DIR", help="also write a Grad-CAM overlay PNG per image there")
    predict.add_argument("--device", help="where the model runs (default: the run's train.device)")
    add_commands(sub)
    add_lr_find(sub)
    export_cli.add_parser(sub)
    models_cli.add_parser(sub)
    return parser


def main(argv: list[str]) -> int:
    for stream in (sys.stdout, sys.stderr):  # whatever is printed, a name that is not UTF-8 never crashes it
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        args = build_parser().parse_args(argv)
        from engine.results_cli import cmd_evaluate, cmd_predict

        handler = {"train": cmd_train, "layers": cmd_layers, "models": cmd_models, "evaluate": cmd_evaluate,
                   "predict": cmd_predict, "advise": cmd_advise, "study": cmd_study,
                   "lr-find": cmd_lr_find, "export": export_cli.cmd_export,
                   "fetch-weights": models_cli.cmd_fetch_weights}[args.command]
        code = handler(args)
        sys.stdout.flush()  # inside the try, so a closed pipe is caught here and not at exit
        return code
    except ThawError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while starting (importing torch, checking the project): one line
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `main.py models | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


class _Progress(ev.Handler):
    """Training progress on the terminal: one updating line on a TTY, a plain line per epoch otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0
        self.width = 0

    def _line(self, text: str) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
        self.stream.write(printable(text) + "\n")
        self.stream.flush()

    def on_batch_ended(self, e: ev.BatchEnded) -> None:
        if self.tty:
            now = time.monotonic()
            if now - self.last < 0.1 and e.step < e.steps_per_epoch:
                return
            self.last = now
            text = (f"epoch {e.epoch}  step {e.step}/{e.steps_per_epoch}  loss {e.loss:.4f}  "
                    f"acc {e.accuracy:.3f}  {e.images_per_second:.0f} img/s  ETA {clock(e.eta_seconds)}")
            self.stream.write("\r" + text.ljust(self.width))
            self.width = max(self.width, len(text))
            self.stream.flush()

    def on_fit_started(self, e: ev.FitStarted) -> None:
        cache = ", feature cache" if e.feature_cache else ""
        where = f"{e.device} x {e.world_size} processes" if e.world_size > 1 else e.device
        self._line(f"training {len(e.classes)} classes: {e.train_size} train / {e.val_size} val images, "
                   f"{e.trainable_params:,} of {e.total_params:,} parameters trainable, on {where}{cache}")

    def on_epoch_ended(self, e: ev.EpochEnded) -> None:
        best = "  *best*" if e.is_best else ""
        self._line(f"epoch {e.epoch}/{e.epochs}  loss {e.train_loss:.4f}  "
                   f"acc {e.train_accuracy:.3f}  val_loss {e.val_loss:.4f}  val_acc {e.val_accuracy:.3f}  "
                   f"{e.images_per_second:.0f} img/s  ETA {clock(e.eta_seconds)}{best}")

    def on_log(self, e: ev.LogMessage) -> None:
        self._line(f"{e.level}: {e.text}" if e.level != "info" else e.text)


def cmd_train(args: argparse.Namespace) -> int:
    """A run in this process; or under torchrun (--nproc-per-node starts it, a worker finds it in its
    environment: `engine.distributed`)."""
    from engine import project as proj
    from engine.distributed import launch, worker
    from engine.distributed.world import World
    from engine.preflight import blocking, preflight

    if args.resume and args.out:
        raise ThawError("--resume continues a run in its own folder; leave out --out")
    project = proj.load(args.project, args.overrides)
    given = args.out or args.resume  # the run folder is given: train.out_dir is not used (the run checks it)
    errors = [e for e in blocking(preflight(project)) if not (given and e.key == "train.out_dir")]
    if errors:
        raise errors[0]
    if args.nproc_per_node is not None:
        return _launch(args, project)
    world = World.from_env()
    if world.distributed:
        return worker.run(world, launch.backend(project), lambda: _train(args, project, world))
    return _train(args, project, world)


def _launch(args: argparse.Namespace, project) -> int:
    """--nproc-per-node: the same command in that many processes under torchrun; its one error, and how to
    continue the run when its folder keeps a checkpoint."""
    from engine.distributed import launch
    from engine.runs import checkpoint

    how = launch.Launch(args.nproc_per_node, args.nnodes, args.node_rank, args.rdzv_endpoint)
    launch.check_project(project, how)
    status, error = launch.run(how, launch.worker_argv(args.project, args.out, args.resume, args.overrides))
    if error:
        print(f"error: {error}", file=sys.stderr)
    folder = args.resume or args.out
    if status == 1 and folder and checkpoint.path_in(folder).is_file():
        again = launch.train_command(Path(folder, "project.thaw.toml").absolute(), how)  # the run's own settings
        again[4:4] = ["--resume", str(folder)]
        print(f"the run folder {folder} keeps its last completed epoch; continue it with: {shlex.join(again)}",
              file=sys.stderr)
    return status


def _train(args: argparse.Namespace, project, world) -> int:
    from engine.runs import folder as run
    from engine.train.loop import StopFlag

    stop = StopFlag()
    interrupts = []
    out = sys.stdout if world.is_main else None  # rank 0 alone speaks for a run of several processes
    where = "after this batch, on every process," if world.distributed else "before the next layer"

    def on_sigint(_sig: int, _frame: object) -> None:
        interrupts.append(1)
        if len(interrupts) > 1:
            raise KeyboardInterrupt
        stop.set()
        if out:
            print(f"\nstopping {where} and saving (Ctrl-C again to abort without saving)", file=sys.stderr)

    in_main = threading.current_thread() is threading.main_thread()
    stops = (signal.SIGINT, signal.SIGTERM) if world.distributed else (signal.SIGINT,)  # torchrun passes both on
    previous = {s: signal.signal(s, on_sigint) for s in stops} if in_main else {}
    progress = [_Progress(out)] if out else []
    try:
        if args.resume:
            run_dir, result = run.resume(project, args.resume, callbacks=progress, stop=stop, world=world)
        else:
            run_dir, result = run.train(project, args.out, callbacks=progress, stop=stop, world=world)
    except ThawError:
        raise
    except KeyboardInterrupt:
        if world.distributed:
            raise
        print("aborted without saving", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure during training: say what, exit 1
        if world.distributed:  # said once, with its rank (engine.distributed.worker)
            raise
        print(f"error: {training_failed(exc)}", file=sys.stderr)
        return 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not out:
        return 130 if result.stopped_by_user else 0
    s = result.summary
    best = "n/a" if s["best_val_accuracy"] is None else f"{s['best_val_accuracy']:.4f}"
    print(f"best val accuracy {best} after {count(s['epochs_completed'], 'epoch')}; "
          f"frozen layers unchanged: {'yes' if s['frozen_verified'] else 'NO'}")
    if result.skipped:
        print(f"skipped {len(result.skipped)} unusable file(s); listed in summary.json")
    print(f"run saved in {run_dir}")
    if result.stopped_by_user:
        return 130
    return 0


_LAYERS_NEED = ("model.arch", "data.train", "freeze.", "head.")  # the weights file and [train] do not matter here


def cmd_layers(args: argparse.Namespace) -> int:
    """The layer tree with the project's freeze plan, built without weights (the counts do not need them)."""
    import json

    from engine import project as proj
    from engine.data import scan
    from engine.model.assemble import skeleton
    from engine.model.layers import describe, walk
    from engine.preflight import blocking, preflight

    project = proj.load(args.project)
    needed = [e for e in blocking(preflight(project)) if e.key.startswith(_LAYERS_NEED)]
    if needed:
        raise needed[0]
    classes = scan(project.resolve(project.data.train)).classes
    built = skeleton(project, len(classes))
    tree = describe(built.model, head_paths=built.head_paths)  # the skeleton's requires_grad follows its plan
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
    from engine.model import zoo

    print(f"{'name':<22} {'params':>8} {'top-1':>6}  {'offline':<7}  weights file")
    for name in zoo.list_architectures():
        info = zoo.arch_info(name)
        params = f"{info.num_params / 1e6:.1f}M" if info.num_params else "?"
        acc = f"{info.imagenet_acc1:.1f}" if info.imagenet_acc1 is not None else "-"
        print(f"{name:<22} {params:>8} {acc:>6}  {'yes' if info.weights_cached else 'no':<7}  {info.weights_file}")
    print(f"pretrained weights are read from {zoo.checkpoints_dir()} (never downloaded unless you run "
          "`python main.py fetch-weights ARCH`)")
    if args.timm:
        from engine.models_cli import print_timm_models

        print_timm_models()
    return 0
