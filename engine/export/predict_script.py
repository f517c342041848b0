#!/usr/bin/env python3
"""Predict with this bundle's model.onnx, outside Thaw: needs only onnxruntime, numpy and pillow.

    python predict.py IMAGE_OR_FOLDER... [--top 5] [--json]
    python predict.py --selftest

Each image is prepared exactly as Thaw prepared it, from preprocessing.json: decoded as a viewer shows it
(first frame, EXIF orientation, wide pixels by their range, transparency on the background, RGB), the shorter
side resized, centre-cropped, scaled to 0..1 and normalised. `--selftest` runs the reference images stored in
reference/ and compares the probabilities with those Thaw computed when it wrote this bundle.

(Written by Thaw's export; it repeats Thaw's own steps with Pillow and numpy, and Thaw's tests hold the two
together.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")
RESAMPLE = {"nearest": Image.Resampling.NEAREST, "nearest-exact": Image.Resampling.NEAREST,
            "bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
            "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING, "lanczos": Image.Resampling.LANCZOS}
BATCH = 16


def read_json(name: str):
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def decode(path, background=(255, 255, 255)) -> Image.Image:
    """The image as a viewer shows it, 8-bit RGB."""
    with Image.open(path) as im:
        im.seek(0)
        im = ImageOps.exif_transpose(im)
    if im.mode in WIDE:
        nominal = 1.0 if im.mode == "F" else 65535.0
        a = np.nan_to_num(np.asarray(im).astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if low >= 0.0 and high <= nominal:
            a = a / nominal
        else:
            a = (a - low) / (high - low) if high > low else np.zeros_like(a)
        im = Image.fromarray(np.round(a * 255.0).astype(np.uint8), "L")
    if im.mode in ALPHA or "transparency" in im.info:
        rgba = im.convert("RGBA")
        under = Image.new("RGBA", rgba.size, (*(int(v) for v in background), 255))
        return Image.alpha_composite(under, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def prepare(image: Image.Image, pre: dict) -> np.ndarray:
    """One RGB image as the model's input, (3, H, W) float32."""
    short = int(pre["resize"]["shorter_side"])
    w, h = image.size
    size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    if size != image.size:
        image = image.resize(size, resample=RESAMPLE[pre["resize"]["interpolation"]])
    ch, cw = (int(v) for v in pre["center_crop"])
    w, h = image.size
    if ch > h or cw > w:
        raise ValueError(f"the crop {cw}x{ch} is larger than the resized image {w}x{h}")
    top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
    image = image.crop((left, top, left + cw, top + ch))
    x = np.asarray(image, dtype=np.uint8).astype(np.float32) * np.float32(1.0 / 255)
    x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    order = pre.get("channel_order", "RGB")
    if order not in ("RGB", "BGR"):
        raise ValueError(f"unknown channel_order {order!r} in preprocessing.json")
    if order == "BGR":
        x = x[..., ::-1]
    if pre.get("layout", "NCHW") != "NCHW":
        raise ValueError(f"this model takes NCHW input; preprocessing.json says {pre.get('layout')!r}")
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def session():
    import onnxruntime

    return onnxruntime.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])


def probabilities(sess, batch: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    logits = sess.run(None, {name: batch.astype(np.float32)})[0].astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def image_paths(arguments: list[str]) -> list[Path]:
    found = []
    for a in arguments:
        p = Path(a)
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in EXTENSIONS)
        elif p.is_file():
            found.append(p)
        else:
            raise SystemExit(f"error: {p} does not exist")
    if not found:
        raise SystemExit("error: no images found")
    return found


def run(paths: list[Path], top: int, pre: dict, labels: list[str]) -> tuple[list[dict], list[dict]]:
    sess = session()
    background = pre.get("decode", {}).get("background", (255, 255, 255))
    rows, skipped, ready = [], [], []
    for i, path in enumerate(paths):
        try:
            ready.append((path, prepare(decode(path, background), pre)))
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            skipped.append({"path": str(path), "reason": str(exc)})
        if len(ready) == BATCH or (i == len(paths) - 1 and ready):
            p = probabilities(sess, np.stack([x for _, x in ready]))
            for (where, _), q in zip(ready, p):  # noqa: B905 (strict= needs Python 3.10; this runs on 3.8)
                best = np.argsort(-q)[:top]
                rows.append({"path": str(where),
                             "top": [{"class": labels[c], "probability": float(q[c])} for c in best]})
            ready = []
    return rows, skipped


def selftest(pre: dict) -> int:
    """Thaw's probabilities for the reference images against this script's; 1 above the tolerance."""
    reference = read_json("reference/expected.json")
    tolerance = float(reference["tolerance"])
    sess = session()
    background = pre.get("decode", {}).get("background", (255, 255, 255))
    worst, same = 0.0, True
    for item in reference["images"]:
        try:
            x = prepare(decode(HERE / item["file"], background), pre)
            got = probabilities(sess, x[None])[0]
        except Exception as exc:  # onnxruntime's errors have no public base class
            print(f"selftest: {item['file']} could not be run ({type(exc).__name__}: {exc}): FAILED")
            return 1
        want = np.asarray(item["probabilities"], np.float64)
        worst = max(worst, float(np.abs(got - want).max()))
        same = same and int(got.argmax()) == int(want.argmax())
    passed = worst <= tolerance and same
    print(f"selftest: {len(reference['images'])} reference images, largest difference in probability "
          f"{worst:.2e} (tolerance {tolerance:.0e}), same top class: {'yes' if same else 'NO'}: "
          f"{'passed' if passed else 'FAILED'}")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Predict with model.onnx as Thaw would.")
    parser.add_argument("images", nargs="*", metavar="IMAGE_OR_FOLDER")
    parser.add_argument("--top", type=int, default=5, help="how many classes per image (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    parser.add_argument("--selftest", action="store_true", help="check against Thaw's reference probabilities")
    args = parser.parse_args(argv)
    pre = read_json("preprocessing.json")
    if args.selftest:
        return selftest(pre)
    if not args.images:
        parser.error("give images or folders, or --selftest")
    if args.top < 1:
        parser.error("--top must be 1 or more")
    labels = read_json("labels.json")
    rows, skipped = run(image_paths(args.images), min(args.top, len(labels)), pre, labels)
    if args.json:
        print(json.dumps({"predictions": rows, "skipped": skipped}, indent=1))
        return 0
    for row in rows:
        print(f"{row['path']}: " + ", ".join(f"{t['class']} {t['probability']:.1%}" for t in row["top"]))
    for s in skipped:
        print(f"skipped {s['path']}: {s['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
