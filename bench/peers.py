"""Thaw against the tools people would otherwise use: the same fine-tune in Thaw headless (`main.py train`),
fastai (`vision_learner`, `fit_one_cycle`), PyTorch Lightning (a LightningModule, manual freeze) and a bare
PyTorch loop, side by side in one run.

Every side gets the same image folder, architecture and initial weights file (ResNet-18 with random weights
written once, on generated shapes at 64 px; the demo CNN with its shipped digits weights, on the inductive
demo's digits at 32 px), batch size, epochs, AdamW with the head at lr and the trainable backbone at
lr * backbone_lr_mult, the one-cycle schedule stepped per batch, frozen BatchNorm in eval mode, the same
augmentation (none for feature extraction, Thaw's "light" otherwise), no loader workers (Thaw's default on 2
cores) and one torch thread. Three recipes: feature extraction, last block, full fine-tune. For feature
extraction a fifth side, `bare_cached`, computes the backbone's features once by hand: no peer has a feature
cache built in, this is what a person writes who knows the trick.

Each side runs in a fresh process (the peers in their own virtual environment, made here from
`bench/peers-requirements.txt` on top of Thaw's torch); the sides alternate (ABBA) over `--repeats` rounds.
Per side: wall seconds per epoch (median of epochs 2..n, end to end of an epoch as its printed line arrives),
seconds from launch to exit, CPU seconds, peak RSS, final validation accuracy. Ratios are peer / Thaw (above 1:
Thaw is faster). Goals: every ratio >= 1, feature extraction >= 5x, accuracy within 1 point of the best peer.

    .venv/bin/python bench/peers.py [--repeats 2] [--epochs 6] [--archs resnet18 thaw_digits_cnn]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, median, table, write_image_folder

CACHE = Path(os.environ.get("THAW_BENCH_CACHE", Path.home() / ".cache" / "thaw-bench"))
REQUIREMENTS = Path(__file__).with_name("peers-requirements.txt")
PEERS = ("fastai", "lightning", "bare")
RECIPES = ("feature_extraction", "last_blocks", "full")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def peers_python() -> Path:
    """The peers' interpreter: a virtual environment in the cache that sees Thaw's packages (torch and
    torchvision as they are, never another download) through a .pth file, with the pinned peers on top."""
    venv = CACHE / "peers-venv"
    python = venv / "bin" / "python"
    stamp = venv / "requirements.sha256"
    want = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.executable.encode()).hexdigest()
    if python.is_file() and stamp.is_file() and stamp.read_text() == want:
        return python
    print(f"making the peers' environment in {venv} from {REQUIREMENTS.name}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "thaw-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], capture_output=True,
                         text=True)
    if pip.returncode:
        raise SystemExit(f"pip could not install {REQUIREMENTS.name}:\n{pip.stdout[-2000:]}{pip.stderr[-3000:]}")
    stamp.write_text(want)
    return python


# ---------------------------------------------------------------- data and weights, written once


def shapes_folder() -> Path:
    base = CACHE / "peers-shapes-80px"
    if not (base / "done").is_file():
        write_image_folder(base / "train", 5, 60, 80, seed=1)
        write_image_folder(base / "val", 5, 100, 80, seed=2)
        (base / "done").write_text("")
    return base


def digits_folder() -> Path:
    from engine.demo.scenarios import ensure_demo

    return ensure_demo("inductive", per_class=100, root=CACHE / "peers-digits").parent / "images"


def resnet18_weights() -> Path:
    path = CACHE / "resnet18-random-seed0.safetensors"
    if not path.is_file():
        import torch
        import torchvision
        from safetensors.torch import save_file

        torch.manual_seed(0)
        save_file(torchvision.models.resnet18(weights=None).state_dict(), str(path))
    return path


def case(arch: str) -> dict:
    """What every side of one architecture shares."""
    from engine.loading import _sizes
    from engine.model import digits_cnn
    from engine.model.zoo import arch_info

    if arch == "resnet18":
        data, weights, size = shapes_folder(), resnet18_weights(), 64
    else:
        data, weights, size = digits_folder(), digits_cnn.SOURCE_WEIGHTS, 32
    pre = arch_info(arch).preprocess
    return {"arch": arch, "weights": str(weights), "train": str(data / "train"), "val": str(data / "val"),
            "classes": 5, "size": size, "resize": _sizes(pre, size)[0], "mean": list(pre.mean), "std": list(pre.std),
            "batch": 32, "lr": 1e-3, "backbone_lr_mult": 0.1, "weight_decay": 1e-4, "seed": 0, "workers": 0,
            "threads": 1}


# ---------------------------------------------------------------- one run, in its own process


def watch(cmd: list[str], env: dict, marker: str) -> dict:
    """Run `cmd`; the times its stdout lines starting with `marker` arrive, its last 'result' line, and what
    the kernel says it cost (wall, CPU, peak RSS: `os.wait4`)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, **env},
                             cwd=ROOT)
        marks, cpu_marks, result = [], [], {}
        for line in p.stdout:
            if line.startswith(marker):
                marks.append(time.perf_counter())
                cpu_marks.append(cpu_seconds(p.pid))
            elif line.startswith("result "):
                result = json.loads(line[7:])
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if p.returncode:
            err.seek(0)
            raise RuntimeError(f"{cmd[:4]} exited {p.returncode}:\n{err.read()[-3000:]}")
    epochs = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    epochs_cpu = [b - a for a, b in zip(cpu_marks, cpu_marks[1:], strict=False)]
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "epoch": median(epochs) if epochs else float("nan"),
            "epoch_cpu": median(epochs_cpu) if epochs_cpu else float("nan"), "result": result}


def cpu_seconds(pid: int) -> float:
    """The CPU time a running process has used so far (Linux: /proc/PID/stat, user + system)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_thaw(spec: dict, preset: str, epochs: int, tmp: Path) -> dict:
    from engine import project as projects
    from engine.project import Project

    p = Project(name="peers", base_dir=tmp)
    for key, value in {
        "model.arch": spec["arch"], "model.weights": spec["weights"], "data.train": spec["train"],
        "data.val": spec["val"], "data.image_size": spec["size"], "data.augment": augment(preset),
        "freeze.preset": preset, "freeze.last_blocks": 1, "head.kind": "linear", "train.epochs": epochs,
        "train.batch_size": spec["batch"], "train.optimizer": "adamw", "train.lr": spec["lr"],
        "train.backbone_lr_mult": spec["backbone_lr_mult"], "train.weight_decay": spec["weight_decay"],
        "train.scheduler": "onecycle", "train.device": "cpu", "train.seed": spec["seed"],
    }.items():
        p.set(key, value)
    file = tmp / "peers.thaw.toml"
    projects.save(p, file)
    out = tmp / f"run-{time.monotonic_ns()}"
    got = watch([sys.executable, "main.py", "train", str(file), "--out", str(out)], ONE_THREAD, "epoch ")
    summary = json.loads((out / "summary.json").read_text())
    got["result"] = {"val_accuracy": summary["final_val_accuracy"], "trainable": summary["trainable_params"]}
    return got


def run_peer(python: Path, side: str, spec: dict, preset: str, epochs: int, tmp: Path) -> dict:
    work = tmp / f"{side}-{time.monotonic_ns()}"
    work.mkdir()
    file = work / "spec.json"
    file.write_text(json.dumps({**spec, "preset": preset, "epochs": epochs, "augment": augment(preset),
                                "workdir": str(work)}))
    return watch([str(python), str(Path(__file__).with_name("peer_sides.py")), side, str(file)], ONE_THREAD,
                 "epoch ")


def augment(preset: str) -> str:
    """No augmentation for feature extraction (what lets Thaw cache the features), Thaw's light one otherwise."""
    return "none" if preset == "feature_extraction" else "light"


# ---------------------------------------------------------------- the table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=["resnet18", "thaw_digits_cnn"])
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES))
    ap.add_argument("--sides", nargs="+", default=list(PEERS))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    python = peers_python()
    print(machine(), "| load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()), flush=True)
    rows, worst = [], {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for arch in args.archs:
            spec = case(arch)
            for preset in args.recipes:
                sides = ["thaw", *args.sides, *(["bare_cached"] if preset == "feature_extraction" else [])]
                got: dict[str, list[dict]] = {s: [] for s in sides}
                for r in range(args.repeats):
                    for side in sides if r % 2 == 0 else sides[::-1]:
                        run = (run_thaw(spec, preset, args.epochs, tmp) if side == "thaw" else
                               run_peer(python, side, spec, preset, args.epochs, tmp))
                        got[side].append(run)
                        print(f"  {arch} {preset} {side}: epoch {run['epoch']:.2f} s, end {run['wall']:.1f} s, "
                              f"acc {run['result']['val_accuracy']:.3f}", flush=True)
                med = {s: {k: median([g[k] for g in runs]) for k in ("epoch", "epoch_cpu", "wall", "cpu", "rss_mib")}
                       | {"acc": median([g["result"]["val_accuracy"] for g in runs]),
                          "trainable": runs[0]["result"]["trainable"]} for s, runs in got.items()}
                thaw = med["thaw"]
                best_acc = max(m["acc"] for s, m in med.items() if s != "thaw")
                for s, m in med.items():
                    rows.append([arch, preset, s, m["epoch"], m["epoch_cpu"], m["wall"], m["cpu"], m["rss_mib"],
                                 100 * m["acc"], m["trainable"], m["epoch"] / thaw["epoch"],
                                 m["epoch_cpu"] / thaw["epoch_cpu"], m["wall"] / thaw["wall"], m["cpu"] / thaw["cpu"]])
                peers = [s for s in med if s not in ("thaw", "bare_cached")]
                worst[(arch, preset)] = (min(med[s]["epoch"] / thaw["epoch"] for s in peers),
                                         min(med[s]["wall"] / thaw["wall"] for s in peers),
                                         100 * (thaw["acc"] - best_acc))
    print(table(["arch", "recipe", "side", "epoch s", "epoch CPU s", "end s", "end CPU s", "peak RSS MiB",
                 "val acc %", "trainable", "epoch ratio", "epoch CPU ratio", "end ratio", "end CPU ratio"], rows))
    print(f"{args.repeats} alternating runs per side, medians; {args.epochs} epochs, batch 32, one torch thread, "
          "no loader workers; ratio = side / Thaw (above 1: Thaw faster)")
    print("load average at end {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    parts = []
    for (arch, preset), (epoch, end, gap) in worst.items():
        goal = 5 if preset == "feature_extraction" else 1
        ok = epoch >= goal and end >= 1 and gap >= -1
        parts.append(f"{arch} {preset}: slowest peer {epoch:.2f}x per epoch, {end:.2f}x to the end, "
                     f"accuracy {gap:+.1f} pt vs best peer ({'met' if ok else 'missed'})")
    print("headline: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
