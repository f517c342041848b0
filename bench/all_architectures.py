"""Every architecture `python main.py models` lists, end to end, at the smallest input it accepts.

For each one, in a process of its own (a crash or the memory of a 600M-parameter model ends with it):
random weights of the architecture saved as safetensors and with torch.save(state_dict); a project that loads
each file (preflight, then the tensors compared); one short run per preset on a tiny folder (feature extraction
from the safetensors file, the last block from the .pth file, full fine-tuning stopped after its first epoch and
resumed from the checkpoint); the frozen tensors compared with the weights file independently of the loop's own
check; `main.py evaluate` on the run; the export where the engine has one. Each step is "ok" or the error, with
its seconds. Results go to a JSON-lines file kept in git (bench/results/), one line per architecture, so a run can stop and continue
(`--retry-failed` runs the failed ones again); `docs/architectures.md` is written from it.

The machine is shared: the biggest models (hundreds of millions of parameters) train with batch size 1 where
they have no BatchNorm and plain SGD (no momentum buffers), one at a time, each started only when the memory it
needs is free.

    nice -n 10 .venv/bin/python bench/all_architectures.py [--jobs 3] [--only resnet18,vit_b_16] [--retry-failed]
    .venv/bin/python bench/all_architectures.py --doc-only
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "all_architectures.jsonl"  # kept in git, beside export_all's
LOGS = ROOT / "bench" / ".results"                                   # each architecture's output (git-ignored)
DOC = ROOT / "docs" / "architectures.md"
STEPS = ("weights saved", "loads .safetensors", "loads .pth", "feature extraction", "last block", "full",
         "frozen check", "resume", "evaluate", "export")
HUGE = 250_000_000           # parameters from which a model gets plain SGD and is run alone
CLASSES, PER_CLASS = 2, 4    # 3 training and 1 validation image per class
CHILD_TIMEOUT = 4 * 3600


# ---------------------------------------------------------------- one architecture (the child process)


def _give_back_memory() -> None:
    """Between steps: free what the step left and hand the freed heap back to the system, so the steps of a
    600M-parameter model do not add up in this one process (vit_h_14 reached 23.9 GB and was killed)."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class Steps:
    """Times each step and keeps "ok" or the error; a failed step does not stop the ones that do not need it."""

    def __init__(self) -> None:
        self.out: dict[str, dict[str, object]] = {}

    @contextlib.contextmanager
    def step(self, name: str):
        start = time.perf_counter()
        print(f"{name}...", flush=True)  # the log says which step a killed process was in
        try:
            yield
            self.out[name] = {"ok": True, "seconds": round(time.perf_counter() - start, 1)}
        except Exception as exc:  # noqa: BLE001 (every failure is a result)
            self.out[name] = {"ok": False, "seconds": round(time.perf_counter() - start, 1),
                              "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                              "trace": traceback.format_exc()[-2000:]}
        finally:
            _give_back_memory()

    def ok(self, name: str) -> bool:
        return bool(self.out.get(name, {}).get("ok"))

    def skip(self, name: str, why: str) -> None:
        self.out[name] = {"ok": None, "note": why}


class StopAfterFirstEpoch:
    """A callback that asks the run to stop once its first epoch has ended (the run saves a checkpoint)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def __call__(self, event) -> None:
        if type(event).__name__ == "EpochEnded" and event.epoch == 1:
            self.stop.set()


def _project(base: Path, arch: str, size: int, weights: str, preset: str, epochs: int, batch: int):
    from engine.project import Project

    p = Project(name=f"{arch}-{preset}", base_dir=base)
    for key, value in {"model.arch": arch, "model.weights": weights, "data.train": "images", "data.image_size": size,
                       "data.augment": "none", "data.val_fraction": 0.25, "freeze.preset": preset,
                       "freeze.last_blocks": 1, "head.kind": "linear", "head.hidden": [], "train.epochs": epochs,
                       "train.batch_size": batch, "train.optimizer": "sgd", "train.lr": 0.01,
                       "train.device": "cpu", "train.amp": False, "train.out_dir": "runs"}.items():
        p.set(key, value)
    return p


def _frozen_unchanged(project, run_dir: Path, weights_file: Path) -> int:
    """Compare every tensor the project's plan freezes, in the run's saved model, with the weights file it
    started from; the number compared. Independent of the loop's own snapshot check."""
    from safetensors.torch import load_file

    from engine.io.weights import load_state_dict
    from engine.model.assemble import skeleton
    from engine.model.freezing import frozen_tensors

    built = skeleton(project, CLASSES)
    frozen = frozen_tensors(built.model, built.plan, built.head_paths)
    saved, start = load_file(str(run_dir / "model.safetensors")), load_state_dict(weights_file)
    changed = [k for k in sorted(frozen) if not saved[k].equal(start[k])]
    if not frozen:
        raise AssertionError("the plan froze nothing")
    if changed:
        raise AssertionError(f"{len(changed)} of {len(frozen)} frozen tensors changed, e.g. {changed[0]}")
    return len(frozen)


def _trained(run_dir: Path, result, epochs: int) -> None:
    s = result.summary
    if s["epochs_completed"] != epochs or not (run_dir / "model.safetensors").is_file():
        raise AssertionError(f"{s['epochs_completed']} of {epochs} epochs, model saved: "
                             f"{(run_dir / 'model.safetensors').is_file()}")
    if not s["frozen_verified"]:
        raise AssertionError(f"the loop's frozen check failed: {s['frozen_changed'][:3]}")
    if not (run_dir / "evaluation.json").is_file():
        raise AssertionError("the run wrote no evaluation.json")


def run_one(arch: str) -> dict[str, object]:
    """Every step for `arch`, in a temporary folder; the result row."""
    import torch
    from safetensors.torch import save_file

    from bench._common import write_image_folder
    from engine import cli
    from engine import project as proj
    from engine.model import zoo
    from engine.preflight import raise_first
    from engine.runs import folder

    info = zoo.arch_info(arch)
    size = max(16, zoo.effective_image_size(info, 16)[0])
    huge = (info.num_params or 0) >= HUGE
    batch_norm = any(name.startswith("BatchNorm") for name in _module_types(arch))  # BatchNorm2d, BatchNorm1d...
    batch = 1 if huge and not batch_norm else 2
    if huge:  # no optimizer state: plain SGD (the project's SGD has Nesterov momentum)
        import engine.train.loop as loop

        loop.make_optimizer = lambda t, groups: torch.optim.SGD(groups, lr=t.lr, momentum=0.0)
    row: dict[str, object] = {"arch": arch, "family": info.family, "params": info.num_params, "image_size": size,
                              "batch_size": batch, "plain_sgd": huge, "started": time.strftime("%Y-%m-%d %H:%M"),
                              "commit": code_version(), "load": [round(os.getloadavg()[0], 1)]}
    s = Steps()
    with tempfile.TemporaryDirectory(prefix=f"thaw-arch-{arch}-") as tmp:
        base = Path(tmp)
        write_image_folder(base / "images", CLASSES, PER_CLASS, size=max(size, 32))
        st_file, pth_file = base / "weights.safetensors", base / "weights.pth"
        with s.step("weights saved"):
            torch.manual_seed(0)
            state = zoo.build_model(arch, "none").state_dict()
            save_file({k: v.contiguous() for k, v in state.items()}, str(st_file))
            torch.save(state, pth_file)
            del state
        for name, path in (("loads .safetensors", st_file), ("loads .pth", pth_file)):
            with s.step(name):
                p = _project(base, arch, size, path.name, "full", 1, batch)
                raise_first(p)
                model = zoo.build_model(arch, path.name, base_dir=base)
                reference = torch.load(pth_file, weights_only=True)
                differ = [k for k, v in model.state_dict().items() if not v.equal(reference[k])]
                del model, reference
                if differ:
                    raise AssertionError(f"{len(differ)} tensors differ from the file, e.g. {differ[0]}")
        runs = {}
        quiet = io.StringIO()
        for name, preset, weights in (("feature extraction", "feature_extraction", st_file),
                                      ("last block", "last_blocks", pth_file)):
            with s.step(name), contextlib.redirect_stdout(quiet):
                p = _project(base, arch, size, weights.name, preset, 1, batch)
                run_dir, result = folder.train(p)
                _trained(run_dir, result, 1)
                runs[name] = (p, run_dir, weights)
                del result  # its model: not kept through the next step
        with s.step("frozen check"):
            checked = [_frozen_unchanged(*runs[n]) for n in ("feature extraction", "last block") if n in runs]
            if len(checked) < 2:
                raise AssertionError("a run to check did not finish")
            row["frozen_tensors_checked"] = checked
        stop = threading.Event()
        with s.step("full"), contextlib.redirect_stdout(quiet):
            p = _project(base, arch, size, st_file.name, "full", 2, batch)
            run_dir, result = folder.train(p, callbacks=[StopAfterFirstEpoch(stop)], stop=stop)
            stopped_after = result.summary["epochs_completed"]
            del result
            if stopped_after != 1 or not (run_dir / "checkpoint.safetensors").is_file():
                raise AssertionError("the stopped run left no checkpoint after epoch 1")
        if s.ok("full"):
            with s.step("resume"), contextlib.redirect_stdout(quiet):
                saved = proj.load(run_dir / "project.thaw.toml")
                run_dir, result = folder.resume(saved, run_dir)
                _trained(run_dir, result, 2)
                resumed_from = result.summary["resumed_from_epoch"]
                del result
                if resumed_from != 1:
                    raise AssertionError(f"resumed from epoch {resumed_from}")
        else:
            s.skip("resume", "the full run did not stop with a checkpoint")
        evaluated = runs.get("last block", (None, None))[1]
        if evaluated is not None:
            with s.step("evaluate"), contextlib.redirect_stdout(quiet):
                code = cli.main(["evaluate", str(evaluated)])
                if code != 0:
                    raise AssertionError(f"main.py evaluate exited {code}")
        else:
            s.skip("evaluate", "no finished run")
        if importlib.util.find_spec("engine.export") is None:
            s.skip("export", "not measured: export not merged yet")
        else:
            s.skip("export", "not measured here: bench/export_all.py (docs/export.md) exports every architecture")
    row["steps"] = s.out
    row["peak_rss_mb"] = _peak_rss_mb()
    row["load"].append(round(os.getloadavg()[0], 1))
    return row


def _module_types(arch: str) -> set[str]:
    from engine.model import zoo

    return {type(m).__name__ for m in zoo.build_skeleton(arch).modules()}


def _peak_rss_mb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# ---------------------------------------------------------------- the whole list (the parent process)


def read_results(path: Path) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["arch"]] = row  # a later line (a retry) replaces an earlier one
    return rows


def all_ok(row: dict) -> bool:
    return all(v.get("ok") is not False for v in row.get("steps", {}).values()) and "crash" not in row


def available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 1 << 30


def needed_mb(params: int | None) -> int:
    """A generous estimate of a child's peak: weights, gradients, the checkpoint's and the saved model's copies
    (plain SGD above HUGE), plus room for activations and the libraries."""
    return int((params or 0) * 4 * 6 / 2**20) + 1500


def append_row(results: Path, row: dict) -> None:
    """One line, in one write to a file opened for appending: children finishing together do not mix lines."""
    fd = os.open(results, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(row) + "\n").encode())
    finally:
        os.close(fd)


class Child:
    """One architecture's process; its output goes to a log file beside the results."""

    def __init__(self, arch: str, results: Path, params: int | None) -> None:
        self.arch, self.results, self.params = arch, results, params
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = LOGS / f"{arch}.log"
        self.start = time.perf_counter()
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, __file__, "--one", arch, "--results", str(results)],
                                         stdout=out, stderr=subprocess.STDOUT)

    def finished(self) -> bool:
        if self.proc.poll() is None and time.perf_counter() - self.start > CHILD_TIMEOUT:
            self.proc.kill()
            self.proc.wait()
        return self.proc.poll() is not None

    def record(self) -> None:
        code = self.proc.returncode
        if code != 0:
            tail = self.log.read_text(errors="replace")[-300:].strip()
            append_row(self.results, {"arch": self.arch, "params": self.params, "steps": {},
                                      "crash": f"the process ended with {code}: {tail}",
                                      "started": time.strftime("%Y-%m-%d %H:%M")})
        print(f"  {self.arch}: {'ok' if code == 0 else 'crashed'} in {time.perf_counter() - self.start:.0f} s",
              flush=True)


def run_all(todo: list[str], params: dict[str, int | None], results: Path, jobs: int, after_each) -> None:
    """Up to `jobs` architectures at a time, each started once the memory it needs is free; one of HUGE
    parameters or more runs alone."""
    running: list[Child] = []
    queue, last_start = list(todo), 0.0
    while queue or running:
        for child in [c for c in running if c.finished()]:
            running.remove(child)
            child.record()
            after_each()
        if queue:
            arch = queue[0]
            huge = (params[arch] or 0) >= HUGE
            room = not running if huge else len(running) < jobs and not any(
                (params[c.arch] or 0) >= HUGE for c in running)
            settled = time.monotonic() - last_start > 60  # the last child's memory shows by now
            spare = 2000 if running else 0  # room for the running ones to grow, and for everyone else
            if room and (settled or not running) and available_mb() >= needed_mb(params[arch]) + spare:
                print(f"[{len(todo) - len(queue) + 1}/{len(todo)}] {arch}", flush=True)
                running.append(Child(queue.pop(0), results, params[arch]))
                last_start = time.monotonic()
                continue
        time.sleep(5)


def _errors(row: dict) -> str:
    return "; ".join(f"{name}: {v['error']}" for name, v in row["steps"].items() if v.get("ok") is False)


def _cell(step: dict | None) -> str:
    if step is None:
        return "—"
    if step.get("ok") is None:
        return step.get("note", "—")
    if step["ok"]:
        return f"ok {step['seconds']:.0f} s" if step["seconds"] >= 1 else "ok <1 s"
    return f"**failed**: {step['error'].replace('|', '/')}"


def write_doc(rows: dict[str, dict], archs: list[str], path: Path, meta: dict[str, str]) -> str:
    """docs/architectures.md: a row per architecture, each step ok with its seconds or the error; totals."""
    done = [rows[a] for a in archs if a in rows]
    good = [r for r in done if all_ok(r)]
    steps_ok = sum(1 for r in done for v in r.get("steps", {}).values() if v.get("ok"))
    steps_failed = sum(1 for r in done for v in r.get("steps", {}).values() if v.get("ok") is False)
    huge = [r["arch"] for r in done if r.get("plain_sgd")]
    headline = (f"{len(good)} of {len(archs)} architectures passed every step ({len(done)} run; "
                f"{steps_ok} steps ok, {steps_failed} failed, {sum(1 for r in done if 'crash' in r)} crashed)")
    lines = [
        "# Every architecture, end to end",
        "",
        "Written by `bench/all_architectures.py` (not part of the test suite). For every architecture that "
        "`python main.py models` lists, in a process of its own, at the smallest input it accepts (16 px, or the "
        "architecture's minimum or fixed size):",
        "",
        "- **weights saved**: random weights of the architecture written as safetensors and with "
        "`torch.save(state_dict)`;",
        "- **loads .safetensors / .pth**: a project with `model.weights` set to that file passes the preflight, "
        "and the model built from it holds exactly the file's tensors;",
        f"- **feature extraction**, **last block**: one epoch on a tiny folder ({CLASSES} classes x {PER_CLASS} "
        "images: 3 training and 1 validation image each) from the safetensors and the .pth file, each run "
        "saving its model and its evaluation;",
        "- **frozen check**: every tensor those two runs' plans freeze, compared in the saved model with the "
        "weights file it started from (independently of the loop's own check, which must pass too);",
        "- **full**: full fine-tuning for 2 epochs, stopped after the first (a checkpoint stays); **resume**: "
        "`resume` from that checkpoint to the end, from the run's own project file;",
        "- **evaluate**: `python main.py evaluate RUN` on the last-block run; **export**: the engine's export, "
        "where it exists.",
        "",
        "Settings: SGD (Nesterov momentum 0.9), learning rate 0.01, batch size 2, no augmentation, CPU, float32, "
        f"two threads per process, up to {meta['jobs']} processes at a time at a low priority (`nice`). Models of "
        f"{HUGE / 1e6:.0f}M parameters or more ({', '.join(huge) or 'none run yet'}) train with plain SGD (no "
        "momentum buffers: the memory of one more model copy), batch size 1 where they have no BatchNorm, and "
        "alone; every process starts only once the memory it needs is free (the machine has 24 GiB shared with "
        "other work).",
        "",
        f"Run on {meta['when']}: {meta['machine']}; {meta['versions']}. Seconds are wall-clock on a shared "
        f"2-core machine{_load(done)}: they say where the time goes, not how fast Thaw is.",
        "",
        *([f"**A subset**: {len(done)} of the {len(archs)} architectures were run (the others say \"not run\"). "
           + meta.get("note", ""), ""] if len(done) < len(archs) else [meta["note"], ""] if meta.get("note") else []),
        "| architecture | params | input | " + " | ".join(STEPS) + " |",
        "|---|---:|---:|" + "---|" * len(STEPS),
    ]
    for a in archs:
        r = rows.get(a)
        if r is None:
            lines.append(f"| {a} | | | not run |" + " |" * (len(STEPS) - 1))
            continue
        params = f"{r['params'] / 1e6:.1f}M" if r.get("params") else "?"
        if "crash" in r:
            lines.append(f"| {a} | {params} | | **crashed**: {r['crash'].replace('|', '/')} |"
                         + " |" * (len(STEPS) - 1))
            continue
        cells = [_cell(r["steps"].get(name)) for name in STEPS]
        lines.append(f"| {a} | {params} | {r['image_size']} px | " + " | ".join(cells) + " |")
    explained = [r for r in done if not all_ok(r)]
    lines += ["", "## What did not pass", ""]
    lines += [f"- **{r['arch']}**: {r.get('crash') or _errors(r)}" for r in explained] or ["Nothing: every row is ok."]
    lines += ["", f"**{headline}.**", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return headline


def _load(rows: list[dict]) -> str:
    """The machine's 1-minute load average at the rows' starts and ends, where they recorded it."""
    seen = [x for r in rows for x in r.get("load", ())]
    return f" (1-minute load average {min(seen):g} to {max(seen):g} at the rows' starts and ends)" if seen else ""


def code_version() -> str:
    """The commit the code under test is (THAW_BENCH_COMMIT for a copy outside git, e.g. `git archive`'s)."""
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return found.stdout.strip() or os.environ.get("THAW_BENCH_COMMIT", "unknown")


def _meta(rows: dict[str, dict], jobs: int, note: str = "") -> dict[str, str]:
    import torch
    import torchvision

    commits = ", ".join(sorted({r.get("commit", "unknown") for r in rows.values()})) or "none yet"
    return {"note": note, "jobs": str(jobs), "when": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
            "versions": f"torch {torch.__version__}, torchvision {torchvision.__version__}, Thaw at commit {commits}"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated architectures (default: all `main.py models` lists)")
    ap.add_argument("--retry-failed", action="store_true", help="run the architectures that failed again")
    ap.add_argument("--results", type=Path, default=RESULTS, help=f"JSON-lines results (default {RESULTS})")
    ap.add_argument("--doc", type=Path, default=DOC, help=f"the table to write (default {DOC})")
    ap.add_argument("--doc-only", action="store_true", help="write the table from the results and stop")
    ap.add_argument("--jobs", type=int, default=1, help="architectures run at a time (the biggest run alone)")
    ap.add_argument("--note", default="", help="a sentence on this run for the table (e.g. why a subset)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        import signal

        import torch

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped bench removes its temporary folder

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        append_row(args.results, run_one(args.one))
        return 0

    from engine.model import zoo

    archs = zoo.list_architectures()
    todo = args.only.split(",") if args.only else archs
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if not args.doc_only:
        rows = read_results(args.results)
        todo = [a for a in todo if a not in rows or (args.retry_failed and not all_ok(rows[a]))]
        params = {a: zoo.arch_info(a).num_params for a in todo}
        todo.sort(key=lambda a: (params[a] or 0) >= HUGE)  # the biggest last, one at a time like the rest
        print(f"{len(todo)} architectures to run; results in {args.results}", flush=True)
        run_all(todo, params, args.results, args.jobs,
                lambda: write_doc(read_results(args.results), archs, args.doc,
                                  _meta(read_results(args.results), args.jobs, args.note)))
    rows = read_results(args.results)
    print(write_doc(rows, archs, args.doc, _meta(rows, args.jobs, args.note)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
