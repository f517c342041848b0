"""How long the layer checklist takes to open a model and apply presets, on the largest torchvision models.

Models are built on the meta device (no memory, no weights), as the window does. Each step includes the
repaint of the visible rows (events are processed before the clock stops). Times are the best of `--repeat`
runs, in milliseconds, with the ratio against resnet18 measured in the same run.

    .venv/bin/python bench/tree_speed.py [--repeat 3] [models ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.model import assemble  # noqa: E402
from engine.model.checklist import Checklist  # noqa: E402
from engine.model.layers import describe  # noqa: E402
from engine.project import FreezeSettings, ModelSettings, Project  # noqa: E402
from gui.freeze.panel import FreezePanel  # noqa: E402

BASELINE = "resnet18"
BIG = ["convnext_large", "efficientnet_b7", "vit_h_14", "swin_v2_b", "maxvit_t", "densenet201", "regnet_y_128gf"]


def skeleton(arch: str):
    """The model as the window gets it: `engine.model.assemble.skeleton`, on the meta device."""
    out = assemble.skeleton(Project(model=ModelSettings(arch=arch, weights="none")), 10)
    return out.model, out.head_paths


def best_ms(fn, repeat: int, app: QApplication) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        app.processEvents()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def measure(arch: str, repeat: int, app: QApplication, panel: FreezePanel) -> dict[str, float]:
    model, heads = skeleton(arch)
    out = {"modules": float(sum(1 for _ in model.modules()))}
    out["describe"] = best_ms(lambda: describe(model, heads), repeat, app)
    out["checklist"] = best_ms(lambda: panel.set_checklist(Checklist(model, heads)), repeat, app)
    for preset in ("full", "feature_extraction"):  # each from the other, so every row changes
        out[preset] = best_ms(lambda p=preset: panel.preset_buttons[p].setChecked(True), 1, app)
    n = 3 if panel.last_blocks.value() == 2 else 2  # a new N, so the plan really changes
    out["last N blocks"] = best_ms(lambda: panel.last_blocks.setValue(n), 1, app)
    first_block = panel.checklist.blocks[0]  # frozen by "last N blocks": checking it thaws the whole block
    out["toggle block"] = best_ms(lambda: panel.tree_model.set_trainable(first_block, True), 1, app)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=BIG)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    panel = FreezePanel()
    panel.set_freeze_settings(FreezeSettings())
    panel.resize(1000, 700)
    panel.show()
    app.processEvents()
    rows = []
    for arch in [BASELINE, *args.models]:
        try:
            rows.append((arch, measure(arch, args.repeat, app, panel)))
        except Exception as exc:  # a model the skeleton cannot build: say so, measure the others
            print(f"{arch}: not measured ({type(exc).__name__}: {exc})")
    cols = ["describe", "checklist", "full", "feature_extraction", "last N blocks", "toggle block"]
    print(f"{'model':<18}{'modules':>8}" + "".join(f"{c:>20}" for c in cols))
    base = rows[0][1]
    for arch, r in rows:
        cells = "".join(f"{r[c]:>11.1f} ms {r[c] / base[c]:>4.1f}x" for c in cols)
        print(f"{arch:<18}{int(r['modules']):>8}{cells}")
    print("(ms: best of runs; x: ratio to resnet18 in this run)")


if __name__ == "__main__":
    main()
