"""Every torchvision classifier that `python main.py models` lists, exported to `.pt2` and ONNX with the engine's
exporter (`engine.export.graph`) and checked against PyTorch: exported or not (and the operator that failed),
the largest difference at batch 1 and 3, the export seconds, and onnxruntime's CPU inference time against
PyTorch's at batch 1 and 32 (a ratio; one thread each, so a machine shared with other work skews neither side;
the two alternate, medians of the repeats). The random weights are made lively (`tests.exportruns.lively`:
BatchNorm statistics measured on random images, the new 5-class head normal): a freshly initialised
EfficientNet gives every image the same output, and a comparison of constants says nothing; the row keeps the
spread of the outputs across the inputs.

Each architecture runs in its own process (memory is returned; one crash or hang costs one row) and its row is
appended to a JSON-lines file as soon as it is done, so a stopped run resumes where it was. The table goes into
docs/export.md between its markers.

    nice -n 10 python bench/export_all.py                 # all, resuming (bench/results/export_all.jsonl)
    python bench/export_all.py --only resnet18,vit_b_16   # some
    python bench/export_all.py --table                    # rewrite the table from the rows so far
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

RESULTS = ROOT / "bench" / "results" / "export_all.jsonl"
DOC = ROOT / "docs" / "export.md"
BEGIN, END = "<!-- export_all table: begin -->", "<!-- export_all table: end -->"
CLASSES = 5
SMALL = 64          # the input size where the architecture allows it
BIG_BATCH = 32
BATCH_BUDGET_S = 20.0  # a batch of 32 estimated to take longer than this (from batch 1) is not timed


def one(arch: str, size: int) -> dict:
    """Export `arch` both ways, verify, time; the row (run in a child process)."""
    import numpy as np
    import torch

    from engine.export import graph
    from engine.model import zoo
    from engine.model.heads import HeadSpec, replace_head
    from tests.exportruns import lively

    torch.manual_seed(0)
    info = zoo.arch_info(arch)
    size = zoo.effective_image_size(info, size)[0]
    model = zoo.build_model(arch, "none")
    lively(model, replace_head(model, HeadSpec(), CLASSES), size)
    x = torch.randn(6 if size <= 256 else 3, 3, size, size)  # vit_h_14 at 518 px: 3 (a batch of 1 takes a minute)
    with torch.inference_mode():
        spread = float(model(x).std(0).mean())  # near 0: every input gets the same output, a comparison says little
    row: dict = {"arch": arch, "size": size, "params": sum(p.numel() for p in model.parameters()), "spread": spread}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        try:
            program = graph.export_program(model, x[:2])
        except graph.ExportFailed as exc:
            return {**row, "pt2": {"ok": False, "operator": exc.operator, "error": str(exc)[:300]},
                    "onnx": {"ok": False, "operator": exc.operator, "error": "needs torch.export first"}}
        traced = time.perf_counter() - started
        ref = graph.reference(model, x)
        row["pytorch_float32_error"] = ref.noise
        pt2 = Path(tmp) / "model.pt2"
        try:
            module = graph.save_pt2(program, pt2, {"labels.json": "[]"})
        except graph.ExportFailed as exc:
            row["pt2"] = {"ok": False, "operator": exc.operator, "error": str(exc)[:300]}
        else:
            check = graph.compare("pt2", lambda a: module(torch.from_numpy(a)).detach().numpy(), ref)
            row["pt2"] = {"ok": check.passed, "max_abs_diff": check.max_abs_diff, "export_s": traced,
                          "mb": pt2.stat().st_size / 1e6}
        started = time.perf_counter()
        onnx_path = Path(tmp) / "model.onnx"
        try:
            graph.save_onnx(program, x[:2], onnx_path, {"thaw.labels": "[]"})
            translated = time.perf_counter() - started
            run = graph.onnx_runner(onnx_path, threads=1)
        except graph.ExportFailed as exc:
            row["onnx"] = {"ok": False, "operator": exc.operator, "error": str(exc)[:300]}
            return row
        check = graph.compare("onnx", run, ref)
        row["onnx"] = {"ok": check.passed, "max_abs_diff": check.max_abs_diff, "export_s": traced + translated,
                       "translate_s": translated, "same_top1": check.same_top1,
                       "single_file": not any(p.suffix == ".data" for p in Path(tmp).iterdir())}
        row["timing"] = timing(model, run, size, torch, np)
    return row


def timing(model, run, size: int, torch, np) -> dict:
    """PyTorch (inference mode) and onnxruntime on the CPU, alternating ABBA; medians in seconds per batch. A
    batch of 32 that batch 1 says would take over BATCH_BUDGET_S is not timed (said so in the row)."""
    out = {}
    for batch in (1, BIG_BATCH):
        if batch == BIG_BATCH and out["b1"]["torch_s"] * batch > BATCH_BUDGET_S:
            return {**out, "skipped_big": f"a batch of {batch} would take about {out['b1']['torch_s'] * batch:.0f} s"}
        x = torch.randn(batch, 3, size, size)
        a = x.numpy()

        def pt(x=x):
            with torch.inference_mode():
                model(x)

        def ort(a=a):
            run(a)

        first = _seconds(pt)  # warm-up, both
        _seconds(ort)
        reps = max(2, min(5, int(10 / max(first, 1e-3))))
        pts, orts = [], []
        for i in range(reps):
            order = (pt, ort) if i % 2 == 0 else (ort, pt)
            for fn in order:
                (pts if fn is pt else orts).append(_seconds(fn))
        out[f"b{batch}"] = {"torch_s": statistics.median(pts), "ort_s": statistics.median(orts), "reps": reps}
    return out


def _seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def rows() -> dict[str, dict]:
    if not RESULTS.is_file():
        return {}
    found = {}
    for line in RESULTS.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            found[r["arch"]] = r
    return found


def _diff(fmt: dict) -> str:
    return f"{fmt['max_abs_diff']:.1e}" if fmt.get("ok") or "max_abs_diff" in fmt else "-"


def _status(fmt: dict | None) -> str:
    if fmt is None:
        return "?"
    if fmt.get("ok"):
        return "yes"
    if "max_abs_diff" in fmt:
        return "differs"
    return f"no ({fmt['operator']})" if fmt.get("operator") else "no"


def table(found: dict[str, dict]) -> str:
    lines = ["| architecture | input | output spread | torch f32 error | ONNX | max diff | .pt2 | max diff | export s | "
             "ort/torch b=1 | ort/torch b=32 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for arch in sorted(found):
        r = found[arch]
        if "error" in r:
            lines.append(f"| {arch} | - | - | - | not run: {r['error']} | | | | | | |")
            continue
        spread = f"{r['spread']:.2g}" if "spread" in r else "-"
        noise = f"{r['pytorch_float32_error']:.1e}" if "pytorch_float32_error" in r else "-"
        onnx, pt2, t = r.get("onnx", {}), r.get("pt2", {}), r.get("timing", {})

        def ratio(key: str, t=t) -> str:
            b = t.get(key)
            return f"{b['ort_s'] / b['torch_s']:.2f} ({b['ort_s'] * 1e3:.0f} / {b['torch_s'] * 1e3:.0f} ms)" if b else "-"

        seconds = onnx.get("export_s") or pt2.get("export_s")
        lines.append(f"| {arch} | {r['size']} | {spread} | {noise} | {_status(onnx)} | {_diff(onnx)} | {_status(pt2)} | "
                     f"{_diff(pt2)} | {seconds:.0f} | {ratio('b1')} | {ratio('b32')} |" if seconds else
                     f"| {arch} | {r['size']} | {spread} | {noise} | {_status(onnx)} | - | {_status(pt2)} | - | - | - | - |")
    ok_onnx = sum(1 for r in found.values() if r.get("onnx", {}).get("ok"))
    ok_pt2 = sum(1 for r in found.values() if r.get("pt2", {}).get("ok"))
    either = sum(1 for r in found.values() if r.get("onnx", {}).get("ok") or r.get("pt2", {}).get("ok"))
    b1 = [r["timing"]["b1"]["ort_s"] / r["timing"]["b1"]["torch_s"] for r in found.values() if "b1" in r.get("timing", {})]
    b32 = [r["timing"]["b32"]["ort_s"] / r["timing"]["b32"]["torch_s"] for r in found.values()
           if "b32" in r.get("timing", {})]
    head = (f"{len(found)} architectures: ONNX verified on {ok_onnx}, .pt2 on {ok_pt2}, at least one format on "
            f"{either}. onnxruntime / PyTorch CPU time (one thread each), median over architectures: "
            f"{statistics.median(b1):.2f} at batch 1, {statistics.median(b32):.2f} at batch 32." if b1 and b32 else "")
    missing = [a for a in all_architectures() if a not in found]
    if missing:
        head += f" Not measured yet ({len(missing)}; `python bench/export_all.py` resumes with them): {', '.join(missing)}."
    return "\n".join([head, "", *lines])


def all_architectures() -> list[str]:
    """Every classifier `python main.py models` lists but the demo CNN (not torchvision's)."""
    from engine.model import zoo

    return [a for a in zoo.list_architectures() if a != zoo.DEMO_ARCH]


def write_table(found: dict[str, dict]) -> None:
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} lacks the markers {BEGIN} / {END}")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n{table(found)}\n{END}{after}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated architectures (default: all)")
    parser.add_argument("--size", type=int, default=SMALL)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per architecture")
    parser.add_argument("--table", action="store_true", help="only rewrite the table in docs/export.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import torch

        torch.set_num_threads(1)
        print(json.dumps(one(args.one, args.size)))
        return 0
    if not args.table:
        archs = args.only.split(",") if args.only else all_architectures()
        done = rows()
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        for arch in archs:
            if arch in done:
                continue
            started = time.perf_counter()
            try:
                out = subprocess.run([sys.executable, __file__, "--one", arch, "--size", str(args.size)],
                                     capture_output=True, text=True, timeout=args.timeout)
                lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
                row = json.loads(lines[-1]) if out.returncode == 0 and lines else \
                    {"arch": arch, "error": f"exit {out.returncode}: {(out.stderr.strip().splitlines() or [''])[-1][:200]}"}
            except subprocess.TimeoutExpired:
                row = {"arch": arch, "error": f"over {args.timeout} s"}
            row["wall_s"] = time.perf_counter() - started
            with RESULTS.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{arch}: onnx {_status(row.get('onnx'))}, pt2 {_status(row.get('pt2'))} "
                  f"({row['wall_s']:.0f} s)", flush=True)
    found = rows()
    if DOC.is_file():
        write_table(found)
    print(table(found).splitlines()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
