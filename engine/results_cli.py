"""``python main.py evaluate RUN_DIR`` and ``python main.py predict RUN_DIR IMAGE...``: what a run's model does,
from the terminal. Errors are `ThawError`s (exit 2, as `train`); Ctrl-C ends with 130 and writes nothing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.errors import DataError

_WIDTH = 12


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.results.evaluation import evaluate_run
    from engine.results.predict import load_run

    trained = load_run(args.run_dir, device=args.device)
    try:
        done = evaluate_run(trained, args.data)
    except KeyboardInterrupt:
        print("interrupted: nothing written")
        return 130
    r = done.report
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    names = r["classes"]
    width = max(_WIDTH, *(len(n) for n in names)) + 2
    print(f"{'class':<{width}}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
    pc = r["per_class"]
    for i, name in enumerate(names):
        print(f"{name:<{width}}{pc['precision'][i]:>10.3f}{pc['recall'][i]:>8.3f}{pc['f1'][i]:>8.3f}"
              f"{pc['support'][i]:>9}")
    for average in ("macro", "weighted"):
        a = r["averages"][average]
        print(f"{average + ' avg':<{width}}{a['precision']:>10.3f}{a['recall']:>8.3f}{a['f1']:>8.3f}")
    top = ", ".join(f"top-{k} {v:.1%}" for k, v in r["top_k_accuracy"].items() if k != "1")
    print(f"accuracy {r['accuracy']:.1%} ({top}) on {r['images']} images of the {r['split']} data "
          f"({r['source']}); calibration error {r['calibration']['ece']:.3f} (15 bins)")
    if r["absent_classes"]:
        print(f"note: no images of {', '.join(r['absent_classes'])} here: their figures are 0, left out of the "
              "macro average")
    if r["failed"]:
        print(f"skipped {len(r['failed'])} unusable image(s); listed in evaluation.json")
    print(f"written: {done.folder / 'evaluation.json'}, {done.folder / 'predictions.csv'}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from engine.data import Sample
    from engine.results.predict import image_files, load_run, predict

    if args.top < 1:
        raise DataError("--top must be 1 or more")
    files, skipped = image_files(args.images)
    out = _cam_folder(args.cam, args.images) if args.cam else None
    trained = load_run(args.run_dir, device=args.device)
    try:
        predictions, failed = predict(trained, [Sample(str(f), -1) for f in files], k=args.top)
        written = _write_cams(trained, predictions, out) if out is not None else {}
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    rows = [{"path": path, "top": [{"class": trained.classes[c], "probability": float(q)}
                                   for c, q in zip(predictions.top_classes[i], predictions.top_probs[i], strict=True)],
             **({"cam": str(written[path])} if path in written else {})}
            for i, path in enumerate(predictions.paths)]
    problems = [{"path": p, "reason": r} for p, r in [*skipped, *failed]]
    if args.json:
        print(json.dumps({"predictions": rows, "skipped": problems}, indent=1))
        return 0
    for row in rows:
        ranked = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in row["top"])
        print(f"{row['path']}: {ranked}" + (f"  (overlay: {row['cam']})" if "cam" in row else ""))
    for p in problems:
        print(f"skipped {p['path']}: {p['reason']}")
    return 0


def _cam_folder(out: str, inputs: list[str]) -> Path:
    """The overlays' folder: never inside a folder of the images (the data is not written to)."""
    folder = Path(out).expanduser().absolute()
    for given in inputs:
        source = Path(given).expanduser().absolute()
        if source.is_dir() and folder.is_relative_to(source):
            raise DataError(f"--cam {folder} is inside the image folder {source}; choose a folder outside it")
    if folder.exists() and not folder.is_dir():
        raise DataError(f"--cam {folder} exists and is not a folder")
    return folder


def _write_cams(trained, predictions, folder: Path) -> dict[str, Path]:
    """One overlay per image, for its likeliest class; a name already there gets -2, -3... (nothing replaced)."""
    from engine.io.atomic import atomic_path
    from engine.results.predict import explain
    from engine.results.saliency import overlay

    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, path in enumerate(predictions.paths):
        view, heat = explain(trained, path, int(predictions.predicted[i]))
        target, n = folder / f"{Path(path).stem}-cam.png", 1
        while target.exists():
            n += 1
            target = folder / f"{Path(path).stem}-cam-{n}.png"
        with atomic_path(target) as tmp:
            overlay(view, heat).save(tmp, format="PNG")
        written[path] = target
    return written

