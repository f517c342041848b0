"""The README.md of a bundle: what it holds and how to use each part, with this model's own names and sizes."""

from __future__ import annotations

from typing import Any


def text(trained: Any, written: list[str], pre: dict, report: dict) -> str:
    classes = trained.classes
    h, w = pre["input_size"]
    arch = trained.project.model.arch
    shown = ", ".join(classes[:8]) + (f", ... ({len(classes)} in all)" if len(classes) > 8 else "")
    parts = [f"# {arch}, fine-tuned by Thaw: {len(classes)} classes\n",
             f"Classes (labels.json, in output order): {shown}.\n",
             f"Input: RGB images, {w}x{h} px after preprocessing (preprocessing.json): decoded as a viewer shows "
             f"them, shorter side resized to {pre['resize']['shorter_side']} px ({pre['resize']['interpolation']}), "
             f"centre-cropped to {w}x{h}, scaled to 0..1, normalised with mean {_short(pre['mean'])} and std "
             f"{_short(pre['std'])}; NCHW float32. Output: one logit per class (softmax gives probabilities).\n",
             "## What is here\n",
             *[f"- {line}" for line in _files(written)],
             "- `labels.json`, `preprocessing.json`, `signature.json` (input and output names, shapes, meaning)",
             "- `export.json`: how each format compared with PyTorch when this bundle was written\n"]
    if "onnx" in written:
        parts += ["## Predict without Thaw or PyTorch\n",
                  "```\npip install -r requirements.txt\npython predict.py photo.jpg folder_of_images/ --top 3 --json\n"
                  "python predict.py --selftest   # reproduces Thaw's probabilities for reference/*.png\n```\n",
                  "From Python (prepare the images as predict.py's `decode` and `prepare` do):\n",
                  "```python\nimport numpy as np, onnxruntime\nfrom predict import decode, prepare, read_json\n\n"
                  "pre = read_json(\"preprocessing.json\")\nsession = onnxruntime.InferenceSession(\"model.onnx\")\n"
                  "x = np.stack([prepare(decode(p), pre) for p in [\"a.jpg\", \"b.png\"]])   # any batch size\n"
                  "logits = session.run([\"logits\"], {\"input\": x})[0]\n```\n",
                  "reference/ holds a few of the run's images (re-encoded as PNG) for the self-test; delete it if "
                  "they must not travel (only `--selftest` needs it).\n"]
    if "pt2" in written:
        parts += ["## In PyTorch (model.pt2)\n",
                  "```python\nimport torch\nextra = {\"labels.json\": \"\", \"preprocessing.json\": \"\"}\n"
                  "model = torch.export.load(\"model.pt2\", extra_files=extra).module()\n"
                  "logits = model(x)   # x: a float32 tensor prepared as above, any batch size\n```\n",
                  f"model.pt2 needs PyTorch {report['versions']['torch'].split('+')[0]} or a later release that "
                  "still reads it.\n"]
    if "safetensors" in written:
        h = trained.project.head
        head = f"kind {h.kind!r}" + (f", hidden layers {list(h.hidden)}" if h.kind == "mlp" else "")
        parts += ["## The weights (model.safetensors)\n",
                  f"The state dict of `{arch}` (as Thaw builds it) with the head of the run's project ({head}, "
                  f"{len(classes)} outputs). Thaw loads it back (`python main.py predict` on the run folder); "
                  "elsewhere build the same modules and `load_state_dict(safetensors.torch.load_file(\"model.safetensors\"))`.\n"]
    return "\n".join(parts)


def _files(written: list[str]) -> list[str]:
    lines = {"onnx": "`model.onnx`: ONNX, opset in signature.json, batch size free (the `batch` dimension); the "
                     "labels and preprocessing also in its metadata (`thaw.labels`, `thaw.preprocessing`)",
             "pt2": "`model.pt2`: a `torch.export` program (labels.json and preprocessing.json inside as extra files)",
             "safetensors": "`model.safetensors`: the weights, as the Thaw run saved them"}
    out = [lines[f] for f in written]
    if "onnx" in written:
        out.append("`predict.py`, `requirements.txt`, `reference/`: predict with onnxruntime, numpy and pillow")
    return out


def _short(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"
