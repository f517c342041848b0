"""A transfer study's table: accuracy per recipe, its spread over seeds, the paired difference from scratch seed by
seed, time per recipe, and how the advisor's picks did against the best recipe. From the study's state
(`engine.study.runner`), as JSON and as Markdown (``study.json``, ``study.md``).
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TIE = 1e-9  # accuracies are fractions of whole images: closer than this is the same number


@dataclass(frozen=True)
class Paired:
    """Per-seed differences (recipe − scratch, in points): each seed's runs share the images, so their luck
    cancels in the difference."""

    diffs: list[float]
    mean: float
    std: float
    won: int
    tied: int
    lost: int


def paired(recipe: list[float], scratch: list[float]) -> Paired:
    """Two recipes seed by seed; accuracies are fractions, differences come back in points."""
    diffs = [round(100 * (r - s), 6) for r, s in zip(recipe, scratch, strict=True)]
    return Paired(diffs, statistics.mean(diffs), statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
                  sum(d > TIE for d in diffs), sum(abs(d) <= TIE for d in diffs), sum(d < -TIE for d in diffs))


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def group_table(state: dict[str, Any], per_class: int | None) -> dict[str, Any]:
    """One "images per class" group: a row per recipe over the seeds whose runs are all done, and the advisor's
    picks against the best recipe."""
    cells = [c for c in state["cells"] if c["per_class"] == per_class]
    recipes = list(dict.fromkeys(r for c in cells for r in c["runs"]))
    done = [c for c in cells if c["runs"] and all(run.get("accuracy") is not None for run in c["runs"].values())]
    rows = []
    for name in recipes:
        seeds = [c for c in done if name in c["runs"]]
        if not seeds:
            continue
        acc = [c["runs"][name]["accuracy"] for c in seeds]
        mean, std = _mean_std(acc)
        row = {"recipe": name, "label": seeds[0]["runs"][name]["label"], "seeds": [c["seed"] for c in seeds],
               "accuracy": acc, "mean": mean, "std": std,
               "seconds": statistics.mean(c["runs"][name]["seconds"] for c in seeds),
               "picked": sum(c.get("advice", {}).get("recipe") == name for c in seeds), "vs_scratch": None}
        with_scratch = [c for c in seeds if "scratch" in c["runs"]]
        if name != "scratch" and with_scratch:
            row["vs_scratch"] = asdict(paired([c["runs"][name]["accuracy"] for c in with_scratch],
                                              [c["runs"]["scratch"]["accuracy"] for c in with_scratch]))
        rows.append(row)
    out: dict[str, Any] = {"per_class": per_class, "rows": rows, "seeds_done": len(done), "seeds": len(cells),
                           "split": next((r["split"] for c in done for r in c["runs"].values()), None)}
    picks = [c["runs"][c["advice"]["recipe"]]["accuracy"] for c in done
             if c.get("advice") and c["advice"]["recipe"] in c["runs"]]
    if rows and picks:
        best = max(rows, key=lambda r: r["mean"])
        advisor = statistics.mean(picks)
        out["advisor"] = {"mean": advisor, "best": best["recipe"], "best_mean": best["mean"],
                          "gap": 100 * (best["mean"] - advisor)}
    return out


def tables(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [group_table(state, k) for k in state["settings"]["per_class"]]


def markdown(state: dict[str, Any]) -> str:
    """study.md: how it was run, a table per "images per class" group, the runs' folders."""
    s = state["settings"]
    lines = [f"# Transfer study: {state['project_name']}", "",
             f"Project `{state['project']}`; recipes {', '.join(s['recipes'])}; seeds {', '.join(map(str, s['seeds']))}. "
             "Every recipe of a seed trains, validates and tests on the same images from the same `train.seed`, "
             "so the difference from scratch is paired seed by seed. Learning rates: the advisor's rule "
             "(docs/advisor.md).", ""]
    done = sum(1 for c in state["cells"] for r in c["runs"].values() if r.get("accuracy") is not None)
    total = sum(len(c["runs"]) for c in state["cells"])
    if done < total:
        lines += [f"**{done} of {total} runs done**: continue with the same command and `--out`.", ""]
    for t in tables(state):
        k = t["per_class"]
        split = {"test": "test", "validation": "validation"}.get(t["split"], "held-out")
        lines += [f"## {'All training images' if k is None else f'{k} images per class'} ({t['seeds_done']} of "
                  f"{t['seeds']} seeds done; {split} accuracy)", ""]
        if not t["rows"]:
            lines += ["No seed done yet.", ""]
            continue
        lines += ["| recipe | accuracy (mean ± std) | per seed | − scratch (mean ± std) | won / tied / lost "
                  "| seconds / run | advisor's pick |", "|---|---:|---|---:|:---:|---:|:---:|"]
        for r in t["rows"]:
            vs = r["vs_scratch"]
            diff = f"{vs['mean']:+.1f} ± {vs['std']:.1f} pt" if vs else ""
            wtl = f"{vs['won']} / {vs['tied']} / {vs['lost']}" if vs else ""
            pick = f"★ {r['picked']}/{len(r['seeds'])}" if r["picked"] else ""
            lines.append(f"| {r['label']} | {100 * r['mean']:.1f} ± {100 * r['std']:.1f} % | "
                         f"{' '.join(f'{100 * a:.1f}' for a in r['accuracy'])} | {diff} | {wtl} | "
                         f"{r['seconds']:.1f} | {pick} |")
        if "advisor" in t:
            a = t["advisor"]
            lines += ["", f"The advisor's picks: {100 * a['mean']:.1f}% on average; the best recipe, "
                      f"{a['best']}: {100 * a['best_mean']:.1f}% (gap {a['gap']:.1f} points)."]
        lines.append("")
    lines += ["## Runs", ""]
    for c in state["cells"]:
        for name, r in c["runs"].items():
            where = Path(r["run_dir"])
            link = where.relative_to(state["folder"]) if where.is_relative_to(state["folder"]) else where
            acc = "not done" if r.get("accuracy") is None else f"{100 * r['accuracy']:.1f}%"
            lines.append(f"- {c['name']} · {name}: [{link}]({link}) ({acc})")
    return "\n".join(lines) + "\n"


def val_curve(run_dir: str | Path) -> list[tuple[int, float]]:
    """(epoch, validation accuracy) from a run's metrics.csv; [] where there is none yet."""
    try:
        with open(Path(run_dir) / "metrics.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    return [(int(r["epoch"]), float(r["accuracy"])) for r in rows if r.get("split") == "val" and r.get("accuracy")]
