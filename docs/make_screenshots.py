"""Render docs/screenshots/: the start page, the idle demo window and a run in progress, at 1280x720,
1366x768 and 1920x1080, and once the run has finished, the Results tab (its matrix with a cell's images, and an
image with its Grad-CAM overlay) at 1280x720 and 1920x1080; offscreen, with a throw-away settings and data
folder. `--scale 2` renders the idle window at a device pixel ratio of 2 (HiDPI) instead, as
idle-1280x720@2x.png; `--dialogs` renders only the dialogs (processes-dialog.png: Run > Run in Several
Processes..., set for two machines); `--advisor` renders the advisor instead: the Suggest column beside the
checklist (suggest-WxH.png) and a small transfer study's result (study-1280x720.png; minutes on a CPU);
`--schedule` renders issue 17's parts: a run of the demo with ULMFiT's gradual unfreezing (the timeline's "now"
line, the checklist's "Learns" column, the plot of which layers learn), the freeze panel alone, and the
learning-rate finder. `--export` renders File > Export Model... after a verified export of a short demo run
(export-dialog.png) instead; `--model-tab` renders the Model tab on an architecture whose weights are not here,
downloading them (model-tab-1280x720.png).

    python docs/make_screenshots.py && python docs/make_screenshots.py --scale 2 && python docs/make_screenshots.py --dialogs
    python docs/make_screenshots.py --advisor
    python docs/make_screenshots.py --schedule
    python docs/make_screenshots.py --export
    python docs/make_screenshots.py --model-tab
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "screenshots"
SIZES = ((1280, 720), (1366, 768), (1920, 1080))
RESULTS_SIZES = ((1280, 720), (1920, 1080))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio (QT_SCALE_FACTOR)")
    parser.add_argument("--dialogs", action="store_true", help="render the dialogs only")
    parser.add_argument("--advisor", action="store_true", help="the Suggest column and a transfer study instead")
    parser.add_argument("--schedule", action="store_true", help="the schedule, activity and finder shots only")
    parser.add_argument("--export", action="store_true", help="only the export dialog after a verified export")
    parser.add_argument("--model-tab", action="store_true", help="the Model tab downloading weights instead")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="thaw-shots-")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.update(QT_SCALE_FACTOR=str(args.scale), TORCH_HOME=f"{tmp}/torch")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from gui.app import create_window
    from gui.start_page import StartPage

    def settle(until=lambda: True, seconds: float = 120.0) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            app.processEvents()
            time.sleep(0.01)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)

    OUT.mkdir(exist_ok=True)
    if args.advisor:
        advisor_shots(create_window, settle, tmp)
        print(f"written to {OUT}")
        return
    if args.export:
        export_dialog(create_window, settle, tmp)
        return
    if args.model_tab:
        window = demo_window(create_window, settle, f"{tmp}/data-model-tab")
        model_tab(window, settle, tmp)
        window.dirty = False
        window.close()
        print(f"written to {OUT}")
        return
    if args.dialogs:
        window = demo_window(create_window, settle, f"{tmp}/data-dialogs")
        from gui.run.launcher import ProcessesDialog

        dialog = ProcessesDialog(window.project, window.path, window)
        dialog.machines.setValue(2)
        dialog.endpoint.setText("10.0.0.1:29400")
        dialog.show()
        settle()
        dialog.grab().save(str(OUT / "processes-dialog.png"))
        dialog.close()
        window.dirty = False
        window.close()
        print(f"written to {OUT}")
        return
    if args.schedule:
        schedule_shots(create_window, settle, tmp)
        print(f"written to {OUT}")
        return
    sizes = SIZES if args.scale == 1 else SIZES[:1]
    for width, height in sizes:
        suffix = f"{width}x{height}" + (f"@{args.scale:g}x" if args.scale != 1 else "")
        os.environ["THAW_DATA_DIR"] = f"{tmp}/data-{suffix}"  # each size as on first use (no saved layout)
        window = create_window(demo="inductive")
        window.resize(width, height)
        window.show()
        settle(window.start_action.isEnabled)
        window.grab().save(str(OUT / f"idle-{suffix}.png"))
        if args.scale == 1:
            page = StartPage()
            page.resize(width, height)
            page.show()
            settle()
            page.grab().save(str(OUT / f"start-{suffix}.png"))
            page.close()
            window.project.set("train.out_dir", f"{tmp}/runs")
            assert window.start(), window.problems()
            settle(lambda w=window: w.plots.val_acc.n >= 6, 600)
            window.grab().save(str(OUT / f"training-{suffix}.png"))
            if (width, height) in RESULTS_SIZES:
                results(window, suffix, settle)
        window.stop_and_join()
        window.dirty = False
        window.close()
    print(f"written to {OUT}")


def advisor_shots(create_window, settle, tmp: str) -> None:
    """The inductive demo's Suggest column at 1280x720 and 1920x1080; then, at 1280x720, a study of the demo with
    10 validation images per class and its test split: 5 labelled images per class, 2 seeds, 4 recipes."""
    import torch

    from engine.demo.scenarios import ensure_demo

    torch.set_num_threads(1)
    for width, height in (SIZES[0], SIZES[2]):
        os.environ["THAW_DATA_DIR"] = f"{tmp}/data-advisor-{width}x{height}"
        window = create_window(demo="inductive")
        window.resize(width, height)
        window.show()
        settle(window.start_action.isEnabled)
        window.freeze_panel.suggest_button.click()
        settle(lambda w=window: w.advisor.advice is not None and not w.advisor.is_measuring(), 600)
        window.grab().save(str(OUT / f"suggest-{width}x{height}.png"))
        if width == SIZES[0][0]:
            assert window.open_path(ensure_demo("inductive", per_class=25, val_per_class=10), ask=False)
            window.apply_settings({"data.test": "images/test"})
            window.open_study()
            dialog = window.study
            dialog.recipes.setText("scratch,fe,last1,full")
            dialog.seeds.setValue(2)
            dialog.per_class.setText("5")
            dialog.folder.setText(f"{tmp}/study")
            assert dialog.start(), dialog.status.text()
            settle(lambda d=dialog: not d.is_running(), 3 * 3600)
            dialog.grab().save(str(OUT / f"study-{width}x{height}.png"))
            dialog.close()
        window.dirty = False
        window.close()


def results(window, suffix: str, settle) -> None:
    """The finished run's Results tab: the most confused cell's images, then the first of them large."""
    settle(lambda: not window.is_running() and window._results_view is not None
           and window.results_view.shown is not None and not window.results_view.is_loading(), 600)
    view = window.results_view
    pairs = view.shown.evaluation.report["most_confused"]
    true, predicted = pairs[0][:2] if pairs else (0, 0)
    view.matrix.setCurrentIndex(view.matrix.index_of(true, predicted))
    view.show_cell(true, predicted)
    settle(lambda: not view.thumbnails.is_busy(), 60)
    window.grab().save(str(OUT / f"results-matrix-{suffix}.png"))
    model = view.gallery.gallery_model
    view.gallery.setCurrentIndex(model.index(0))
    view.show_image(model.predictions, model.image(0))
    settle(lambda: view.detail.heat is not None, 120)
    window.grab().save(str(OUT / f"results-image-{suffix}.png"))


def demo_window(create_window, settle, data_dir: str):
    """The inductive demo's window at 1280x720 with its own settings and data folder, ready to start."""
    os.environ["THAW_DATA_DIR"] = data_dir
    window = create_window(demo="inductive")
    window.resize(1280, 720)
    window.show()
    settle(window.start_action.isEnabled)
    return window


def schedule_shots(create_window, settle, tmp: str) -> None:
    """The demo with ULMFiT's schedule, mid-run at 1280x720; its freeze panel; the finder on the demo."""
    window = demo_window(create_window, settle, f"{tmp}/data-schedule")
    window.freeze_panel.schedule.buttons["gradual"].click()
    window.project.set("train.out_dir", f"{tmp}/runs")
    window.project.set("train.epochs", 12)
    window.project.set("train.activity_every", 2)
    window.training_panel.show_values()
    window.recheck()
    settle()
    assert window.start(), window.problems()
    settle(lambda: window.plots.val_acc.n >= 6, 600)
    window.grab().save(str(OUT / "schedule-run-1280x720.png"))
    window.freeze_panel.grab().save(str(OUT / "timeline-and-learns-column.png"))
    window.stop_and_join()
    settle(lambda: not window.is_running())
    window.find_lr()
    dialog = window.lr_finder
    settle(lambda: dialog.result is not None and not dialog.is_running(), 600)
    dialog.grab().save(str(OUT / "lr-finder.png"))
    dialog.close()
    window.dirty = False
    window.close()


def export_dialog(create_window, settle, tmp: str) -> None:
    """A 2-epoch demo run, then File > Export Model... on it, exported and verified."""
    window = demo_window(create_window, settle, f"{tmp}/data-export")
    window.project.set("train.out_dir", f"{tmp}/runs")
    window.project.set("train.epochs", 2)
    assert window.start(), window.problems()
    settle(lambda: window.last_result is not None or window.last_error is not None, 900)
    window.export_action.trigger()
    dialog = window.export_dialog
    dialog.start()
    settle(lambda: not dialog.is_running(), 900)
    assert dialog.result is not None, dialog.error
    dialog.grab().save(str(OUT / "export-dialog.png"))
    dialog.close()
    window.dirty = False
    window.close()
    print(f"written to {OUT / 'export-dialog.png'}")


def model_tab(window, settle, tmp: str) -> None:
    """The Model tab on resnet50, whose pretrained weights are not on this machine, while they download from a
    mirror (THAW_WEIGHTS_MIRROR: a slow local server, the download cancelled before its hash is checked); then
    the demo's architecture again."""
    import contextlib
    import http.server
    import threading

    from engine.model import zoo

    served = Path(tmp) / "mirror"
    served.mkdir()
    with open(served / zoo.pretrained_path("resnet50").name, "wb") as f:
        f.truncate(zoo.arch_info("resnet50").weights_size_bytes)

    class Slow(http.server.SimpleHTTPRequestHandler):
        def copyfile(self, source, outputfile):
            with contextlib.suppress(ConnectionError):  # the download is cancelled once the picture is taken
                while piece := source.read(1 << 18):
                    outputfile.write(piece)
                    time.sleep(0.05)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: Slow(*a, directory=str(served), **k))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    os.environ["THAW_WEIGHTS_MIRROR"] = f"http://127.0.0.1:{httpd.server_address[1]}"
    panel = window.model_panel
    window.go_to_field("model.arch")
    for arch in ("resnet50", window.project.model.arch):
        panel.search.setText(arch)
        panel.search.returnPressed.emit()
        panel.search.clear()
        settle()
        if arch == "resnet50":
            panel.fetcher.download_button.click()
            settle(lambda: panel.fetcher.progress.value() > 300, 60)
            panel.parentWidget().parentWidget().ensureWidgetVisible(panel.fetcher, 0, 0)
            settle()
            window.grab().save(str(OUT / "model-tab-1280x720.png"))
            panel.fetcher.cancel()
            settle(lambda: not panel.fetcher.is_busy(), 30)
    httpd.shutdown()
    del os.environ["THAW_WEIGHTS_MIRROR"]


if __name__ == "__main__":
    main()
