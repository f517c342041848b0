"""Transferability per depth: the scores of the features at each cut point the layer checklist offers, from one
forward pass over a stratified subsample of the training images, and a quick linear probe at each.

A cut point is where "train the last N blocks" cuts the network: N = 0 (feature extraction) trains on the
head's input; N >= 1 trains the last N blocks on the output of the block before them, globally pooled here
(the mean over its spatial or token positions). If the features N blocks down fit the labels better than the
head's input, the top N blocks are specific to the source (Yosinski et al. 2014) and are worth training.
With fewer images than twice a depth's dimensions any labelling fits its features, and LogME and H-score grow
with the dimensions alone; so such features are first reduced to their N/2 leading principal components
(labels unused), which puts every depth on a footing the images can judge.
The pass runs the source model as it is (its own head kept), so its softmax gives LEEP and NCE where the
weights are the pretrained ones whose classes are known; each is also computed with the labels shuffled (the
same images, no relation to the labels), the level a source that knew nothing of the target would reach.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from engine.advice.scores import h_score, leep, logme, nce
from engine.data import Sample
from engine.device import autocast_dtype, pick_device
from engine.errors import ProjectError
from engine.loading import ImageDataset, make_loader
from engine.model import zoo
from engine.model.checklist import Checklist
from engine.model.heads import find_classifier
from engine.preflight import raise_first
from engine.project import Project
from engine.train.feature_cache import Tap, extract
from engine.train.loop import project_data

MAX_SCORED = 2000  # training images scored at most (LogME's cost grows with N * D^2)
MAX_HELD_OUT = 1000  # validation images the probe is measured on at most
CUT_POINTS = 4  # N = 0 .. 3: the last few blocks
PROBE_STEPS = 200  # full passes of the linear probe's optimiser, at most
SHUFFLES = 5  # label shuffles LEEP and NCE are compared with


@dataclass
class Depth:
    """The features at one cut point: `trained` blocks above it (0: feature extraction)."""

    trained: int
    after: str  # the block whose output it is ("" for the head's input, when that is not a block's output)
    dims: int
    logme: float
    h_score: float
    probe: float  # held-out accuracy of a linear probe on these features


@dataclass
class Measured:
    """What one pass measured, with the data facts the advice needs."""

    depths: list[Depth]  # feature extraction first, then deeper cuts
    blocks: int  # blocks the checklist offers
    classes: list[str]
    train_counts: list[int]  # training images per class (all of them, not the subsample)
    scored: int  # training images scored
    held_out: int  # validation images the probe was measured on
    leep: float | None = None
    nce: float | None = None
    leep_shuffled: float | None = None  # the same with the labels shuffled: no relation left
    nce_shuffled: float | None = None
    source_note: str = ""  # why LEEP/NCE are missing
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def stratified(samples: list[Sample], limit: int, seed: int) -> list[Sample]:
    """At most `limit` samples, each class kept in proportion (at least one each), drawn with `seed`."""
    if len(samples) <= limit:
        return list(samples)
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[Sample]] = {}
    for s in samples:
        by_class.setdefault(s.label, []).append(s)
    out: list[Sample] = []
    for label in sorted(by_class):
        group = sorted(by_class[label], key=lambda s: s.path)
        k = max(1, round(limit * len(group) / len(samples)))
        out += [group[i] for i in sorted(rng.choice(len(group), size=min(k, len(group)), replace=False))]
    return out


def global_pool(t: torch.Tensor) -> torch.Tensor:
    """[N, D]: a block's output averaged over its positions. [N, C, H, W] (or channels last, [N, H, W, C], told
    by which two dimensions are the equal spatial ones) over H and W; [N, T, D] over the tokens."""
    if isinstance(t, (tuple, list)):
        t = t[0]
    if t.dim() == 4:
        spatial = (1, 2) if t.shape[1] == t.shape[2] and t.shape[2] != t.shape[3] else (2, 3)
        return t.float().mean(dim=spatial)
    if t.dim() == 3:
        return t.float().mean(dim=1)
    return t.float().flatten(1)


def _flat(t: torch.Tensor) -> torch.Tensor:
    """[N, D] from a head's input or a model's output (the first of a tuple of outputs)."""
    if isinstance(t, (tuple, list)):
        t = t[0]
    return t.float().flatten(1)


def reduced(features: np.ndarray) -> np.ndarray:
    """The features, or their N/2 leading principal components where they have more dimensions than that (from
    the N x N Gram matrix: cheap however wide the features)."""
    k = max(1, len(features) // 2)
    if features.shape[1] <= k:
        return features
    centred = features - features.mean(axis=0)
    values, vectors = np.linalg.eigh(centred @ centred.T)
    top = np.argsort(values)[::-1][:k]
    return vectors[:, top] * np.sqrt(np.clip(values[top], 0, None))


def row_span(x: np.ndarray) -> np.ndarray:
    """An orthonormal basis `[D, r]` of the span of the rows of `x` (r <= N)."""
    values, vectors = np.linalg.eigh(x @ x.T)
    keep = values > values.max() * 1e-10
    return x.T @ vectors[:, keep] / np.sqrt(values[keep])


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Held-out accuracy of a multinomial logistic regression on standardised features (L-BFGS, at most
    `PROBE_STEPS` full passes): the linear probe of Kornblith et al. 2019. Features wider than the images are
    first expressed in the basis of the training rows' span: the L2-penalised solution lies in it, so the
    predictions are the same, at the cost of N dimensions instead of D."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    x, test = (train_x - mean) / std, (test_x - mean) / std
    if x.shape[1] > x.shape[0]:
        basis = row_span(x)
        x, test = x @ basis, test @ basis
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = LogisticRegression(max_iter=PROBE_STEPS).fit(x, train_y)
    return float((probe.predict(test) == test_y).mean())


def measure(project: Project, stop: threading.Event | None = None,
            progress: Callable[[str], None] | None = None) -> Measured:
    """Score the features at each cut point of the project's model on its training images (see the module).

    Raises a `ThawError` for a project that cannot run, a `ProjectError` for one without pretrained weights
    (random features say nothing about transfer), and `InterruptedError` once `stop` is set."""
    start = time.perf_counter()
    say = progress or (lambda _text: None)
    stop = stop or threading.Event()
    if project.model.weights == "none":
        raise ProjectError("model.weights", "the model starts from random weights: there is nothing to transfer "
                                            "to measure; choose pretrained weights or a weights file")
    raise_first(project)
    data = project_data(project)
    device = pick_device(project.train.device)
    notes: list[str] = []
    model = zoo.build_model(project.model.arch, project.model.weights, base_dir=project.base_dir, notes=notes)
    model.to(device).eval()
    classifier = find_classifier(model)
    blocks = Checklist(model).blocks
    cuts = [b for b in reversed(blocks[:-1])][: CUT_POINTS - 1]  # the block under the last 1, 2, 3 blocks
    modules = dict(model.named_modules())
    taps = [Tap(modules[classifier], before=True, pool=_flat), *(Tap(modules[b], pool=global_pool) for b in cuts),
            Tap(model, pool=_flat)]
    seed = project.train.seed
    train = stratified(data.train.samples, MAX_SCORED, seed)
    held = stratified(data.val.samples, MAX_HELD_OUT, seed)
    amp = autocast_dtype(device, project.train.amp)
    readings = []
    for what, samples in (("training", train), ("validation", held)):
        say(f"reading the features of {len(samples)} {what} images at {len(taps) - 1} depths")
        loader = make_loader(ImageDataset(samples, data.val.transform, data.val.image_size), 64, False, seed)
        got = extract(model, taps, loader, device, amp, stop)
        if got is None:
            if stop.is_set():
                raise InterruptedError("stopped")
            raise ProjectError("model.arch", "this model's blocks are not each run once per image; the "
                                             "advisor cannot read its features")
        readings.append(got)
    (train_f, train_y, _), (held_f, held_y, _) = readings
    ty, hy = train_y.cpu().numpy(), held_y.cpu().numpy()
    depths = []
    for i, after in enumerate(["", *cuts]):
        if stop.is_set():
            raise InterruptedError("stopped")
        say(f"scoring the features {'at the head' if not i else 'after ' + after}")
        f = train_f[i].cpu().double().numpy()
        scored = reduced(f)
        depths.append(Depth(trained=i, after=after or (blocks[-1] if blocks else ""), dims=f.shape[1],
                            logme=logme(scored, ty), h_score=h_score(scored, ty),
                            probe=linear_probe(f, ty, held_f[i].cpu().double().numpy(), hy)))
    out = Measured(depths=depths, blocks=len(blocks), classes=list(data.classes),
                   train_counts=data.class_counts(), scored=len(ty), held_out=len(hy), notes=notes)
    _source_scores(out, project, train_f[-1], ty)
    out.seconds = time.perf_counter() - start
    return out


def _source_scores(out: Measured, project: Project, logits: torch.Tensor, labels: np.ndarray) -> None:
    """LEEP and NCE from the source head's outputs, where the weights are the pretrained ones (whose classes
    are known); else the reason they are missing."""
    if project.model.weights != "pretrained":
        out.source_note = "LEEP and NCE need the source's own head; a weights file's classes are not known"
        return
    try:
        source = zoo.source_classes(project.model.arch)
    except (KeyError, AttributeError, ProjectError):  # ProjectError: timm does not know them
        source = []
    if logits.shape[1] != len(source) or not source:
        out.source_note = "the source head's classes are not known for these weights"
        return
    probs = torch.softmax(logits.double(), dim=1).cpu().numpy()
    predicted = probs.argmax(1)
    out.leep, out.nce = leep(probs, labels), nce(predicted, labels)
    rng = np.random.default_rng(0)
    shuffles = [rng.permutation(labels) for _ in range(SHUFFLES)]
    out.leep_shuffled = float(np.mean([leep(probs, y) for y in shuffles]))
    out.nce_shuffled = float(np.mean([nce(predicted, y) for y in shuffles]))
