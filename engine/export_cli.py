"""``python main.py export RUN_DIR [--format onnx,pt2,safetensors] [--out DIR] [--zip]``: a run's model as a
verified bundle. Exit 0 when every format asked for is written and verified; 2 for input that cannot be used
(nothing written); 1 when a format could not be exported (the rest is written, the operator named) or a
verification failed (nothing written); 130 on Ctrl-C (nothing written)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="export a run's model (ONNX, .pt2, safetensors), verified against PyTorch")
    export.add_argument("run_dir", help="a run folder (it holds model.safetensors)")
    export.add_argument("--format", dest="formats", default="onnx,pt2,safetensors",
                        help="comma-separated: onnx, pt2, safetensors (default: all three)")
    export.add_argument("--out", help="the bundle's folder: new, empty or an earlier export (default: RUN_DIR/export)")
    export.add_argument("--zip", action="store_true", help="write the bundle as one .zip file instead of a folder")


def cmd_export(args: argparse.Namespace) -> int:
    from engine.errors import ThawError
    from engine.export.bundle import ExportStopped, export_run, parse_formats
    from engine.export.graph import VerificationFailed

    formats = parse_formats(args.formats)

    def step(text: str) -> None:
        print(f"{text}...", flush=True)

    try:
        result = export_run(args.run_dir, args.out, formats, zipped=args.zip, progress=step)
    except (KeyboardInterrupt, ExportStopped):
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    except VerificationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ThawError:
        raise  # invalid input: exit 2, said by main
    except Exception as exc:  # a failure while exporting: say what, exit 1 (nothing was left behind)
        print(f"error: export failed: {type(exc).__name__}: {exc}; nothing was written", file=sys.stderr)
        return 1
    print(result.summary())
    if result.failed:
        print(f"error: {', '.join(result.failed)} could not be exported (see above); the bundle in {result.path} "
              f"holds {', '.join(result.written)}", file=sys.stderr)
        return 1
    print(f"exported to {result.path}")
    return 0
