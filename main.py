"""Thaw: a desktop workbench for transfer learning on images.

    python main.py                      open the GUI on its start page (a demo, a folder, a project)
    python main.py PROJECT.thaw.toml    open the GUI on a saved project
    python main.py --demo inductive     open the GUI on a demo (inductive or transductive)
    python main.py train PROJECT        train headless (see `python main.py train --help`)
    python main.py layers PROJECT       print the layer tree and freeze plan
    python main.py models [--timm]      list the architectures (timm's too, where timm is installed)
    python main.py fetch-weights ARCH   download an architecture's pretrained weights (or --file: import them)
"""

from __future__ import annotations

import os

# Offline: huggingface_hub (timm's) reads this once, when it is imported; set before anything can import it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import sys  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from engine.startup import interrupts_wait_for_imports

    interrupts_wait_for_imports()  # Ctrl-C while torch is imported: one line, not a broken import's traceback
    from engine.cli import COMMANDS

    if argv and argv[0] in COMMANDS:
        from engine.cli import main as cli_main

        return cli_main(argv)
    parser = argparse.ArgumentParser(
        prog="main.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("project", nargs="?", help="a *.thaw.toml project to open (default: the start page)")
    parser.add_argument("--demo", choices=("inductive", "transductive"), help="open a demo project")
    args = parser.parse_args(argv)
    from gui.app import run_gui

    return run_gui(args.project, args.demo)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C before a command took it over (importing the engine): one line, 130
        print("interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(130)
