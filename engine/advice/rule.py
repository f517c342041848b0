"""The advisor's rule: from the data's size and what `engine.advice.depth` measured, a freeze plan and its
learning rates, with the evidence in words. docs/advisor.md writes the rule down; the tests hold it to
synthetic cases that must go each way.

1. How much data: the median of the training images per class. Under `SMALL` a class is "little data" (every
   trained layer can fit its noise), from `LARGE` on "plenty" (CS231n's transfer-learning table).
2. Which depth: a deeper cut is better only when both its linear probe (by more than `PROBE_MARGIN`) and its
   LogME beat the head's input: then the blocks above it are specific to the source, and trained.
3. How close the task is, where the source's own head is known: the share of the labels' uncertainty its
   predicted classes explain, measured against the same computation on shuffled labels (NCE). Under
   `NEW_TASK` the task is a new one: the top block is built for the source's classes, and trained.
4. Feature extraction with little data and a close (or unknown) task; more blocks with more data; a full
   fine-tune with plenty of data or nothing pretrained.

Scores have no absolute meaning (thuml/LogME#28): the evidence compares depths, and the source with itself on
shuffled labels; it never grades one number alone.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from engine.advice.depth import Measured

SMALL, LARGE = 100, 1000  # training images per class (median over the classes)
PROBE_MARGIN = 0.03  # a deeper cut must beat the head's probe accuracy by more than this (3 points)
NEW_TASK = 0.5  # the source's classes explain less than half of the labels' uncertainty
CAVEAT = ("These scores rank depths on these images; their values mean nothing on their own (thuml/LogME#28). "
          "A transfer study trains the plans themselves and measures them.")

# The learning rates each plan gets (AdamW; SGD takes ten times these). A head on frozen features can move fast;
# fine-tuning trains the head at a lower rate, and the blocks with it: the last one or two at the same rate
# (they are the source-specific ones, which must change), more of the body at a tenth (its early layers are
# general, Yosinski et al. 2014: move them gently). From scratch nothing is pretrained: one rate for all.
HEAD_LR = {"scratch": 0.003, "feature_extraction": 0.01, "fine_tune": 0.003}
SGD_FACTOR = 10.0
FEW_BLOCKS = 2  # up to this many trained blocks keep the head's rate


@dataclass
class Plan:
    """A freeze plan with its learning rates: what a recipe or a suggestion sets in a project."""

    preset: str  # feature_extraction | last_blocks | full
    last_blocks: int = 0
    lr: float = 0.0
    backbone_lr_mult: float = 1.0
    scratch: bool = False  # random weights instead of the pretrained ones

    @property
    def label(self) -> str:
        if self.scratch:
            return "from scratch"
        if self.preset == "last_blocks":
            return f"last {self.last_blocks} block{'s' if self.last_blocks != 1 else ''}"
        return "feature extraction" if self.preset == "feature_extraction" else "full fine-tune"

    def overrides(self) -> list[str]:
        """The project settings, as ``section.key=value`` (`engine.project.apply_overrides`)."""
        out = [f"freeze.preset={self.preset}", f"train.lr={self.lr!r}"]
        if self.preset == "last_blocks":
            out.append(f"freeze.last_blocks={self.last_blocks}")
        if self.preset != "feature_extraction":  # with everything frozen the multiplier scales nothing
            out.append(f"train.backbone_lr_mult={self.backbone_lr_mult!r}")
        if self.scratch:
            out.append("model.weights=none")
        return out

    def sections(self) -> dict[str, dict]:
        """The [freeze] and [train] settings it changes, as in a project file."""
        freeze: dict = {"preset": self.preset}
        if self.preset == "last_blocks":
            freeze["last_blocks"] = self.last_blocks
        train: dict = {"lr": self.lr}
        if self.preset != "feature_extraction":
            train["backbone_lr_mult"] = self.backbone_lr_mult
        return {"freeze": freeze, "train": train}


def plan(preset: str, last_blocks: int = 0, blocks: int = 0, optimizer: str = "adamw",
         scratch: bool = False) -> Plan:
    """A plan with the learning rates the rule gives it; "last N" with N >= `blocks` is a full fine-tune."""
    if preset == "last_blocks" and (last_blocks <= 0 or (blocks and last_blocks >= blocks)):
        preset, last_blocks = ("feature_extraction", 0) if last_blocks <= 0 else ("full", 0)
    scale = SGD_FACTOR if optimizer == "sgd" else 1.0
    if scratch:
        return Plan("full", 0, HEAD_LR["scratch"] * scale, 1.0, scratch=True)
    if preset == "feature_extraction":
        return Plan(preset, 0, HEAD_LR["feature_extraction"] * scale, 1.0)
    trained = last_blocks if preset == "last_blocks" else blocks or FEW_BLOCKS + 1
    return Plan(preset, last_blocks if preset == "last_blocks" else 0, HEAD_LR["fine_tune"] * scale,
                1.0 if trained <= FEW_BLOCKS else 0.1)


@dataclass
class Advice:
    plan: Plan
    evidence: list[str]
    measured: Measured | None
    caveat: str = CAVEAT
    per_class: float = 0.0
    task_share: float | None = None  # share of the labels' uncertainty the source's classes explain
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"recommended": {**self.plan.sections(), "label": self.plan.label}, "evidence": self.evidence,
                "caveat": self.caveat, "images_per_class": self.per_class, "task_share": self.task_share,
                "measured": self.measured.to_dict() if self.measured is not None else None,
                "plan": asdict(self.plan)}


def task_share(m: Measured) -> float | None:
    """How much of the labels' uncertainty the source's predicted classes explain, 0 (no more than with the
    labels shuffled) to 1 (they determine the label); None where unknown or where the shuffled labels are
    explained as well (too few images per source class to tell)."""
    if m.nce is None or m.nce_shuffled is None or m.nce_shuffled > -0.05:
        return None
    return min(1.0, max(0.0, (m.nce - m.nce_shuffled) / -m.nce_shuffled))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def recommend(m: Measured, optimizer: str = "adamw") -> Advice:
    """The rule (see the module) applied to one measurement."""
    per_class = float(statistics.median(m.train_counts)) if m.train_counts else 0.0
    size = "little" if per_class < SMALL else "plenty of" if per_class >= LARGE else "a fair amount of"
    evidence = [f"{len(m.classes)} classes with a median of {per_class:g} training images each: {size} data "
                f"(under {SMALL} a class is little, from {LARGE} on plenty)."]
    top, deeper = m.depths[0], m.depths[1:]
    best = max(deeper, key=lambda d: (d.probe, d.logme), default=None)
    others = ", ".join(f"after {d.after}: {_pct(d.probe)}" for d in deeper)
    source_specific = best is not None and best.probe > top.probe + PROBE_MARGIN and best.logme > top.logme
    if source_specific:
        evidence.append(f"Features after {best.after} separate your classes better than the head's input (linear "
                        f"probe {_pct(best.probe)} vs {_pct(top.probe)}; LogME {best.logme:.2f} vs {top.logme:.2f}): "
                        f"the last {best.trained} block{'s are' if best.trained > 1 else ' is'} specific to the "
                        "source; train {}.".format("them" if best.trained > 1 else "it"))
    else:
        lower = f" ({others})" if others else ""
        logmes = ", ".join(f"{d.logme:.2f}" for d in deeper)
        evidence.append(f"The head's input separates your classes best: linear probe {_pct(top.probe)}{lower}"
                        + (f"; LogME {top.logme:.2f} vs {logmes}." if deeper else "."))
    share = task_share(m)
    if share is not None:
        closeness = "a new task" if share < NEW_TASK else "close to the source's task"
        evidence.append(f"The source's own head explains {_pct(share)} of your labels' uncertainty (NCE "
                        f"{m.nce:.2f}, {m.nce_shuffled:.2f} with the labels shuffled; LEEP {m.leep:.2f} vs "
                        f"{m.leep_shuffled:.2f}): {closeness}.")
    elif m.source_note:
        evidence.append(f"How close the task is to the source's was not measured: {m.source_note}.")
    new_task = share is not None and share < NEW_TASK
    if per_class >= LARGE:
        chosen = plan("full", blocks=m.blocks, optimizer=optimizer)
        why = "with plenty of data every layer can adapt: fine-tune all of them, the body gently"
    elif source_specific:
        n = best.trained + (1 if per_class >= SMALL else 0)
        chosen = plan("last_blocks", n, m.blocks, optimizer)
        why = f"train the blocks the source made specific{' and one more, with this much data' if n > best.trained else ''}"
    elif new_task:
        n = 1 if per_class < SMALL else 2
        chosen = plan("last_blocks", n, m.blocks, optimizer)
        why = (f"the top block{'s are' if n > 1 else ' is'} built for the source's classes, which say little "
               f"about yours: train {'them' if n > 1 else 'it'} with the head")
    elif per_class < SMALL:
        chosen = plan("feature_extraction", optimizer=optimizer)
        why = "the features already fit and the data is small: train only the head, so nothing else can overfit"
    else:
        chosen = plan("last_blocks", 1, m.blocks, optimizer)
        why = "the features fit and there is data enough to adapt the last block as well"
    evidence.append(f"Suggested: {chosen.label} ({why}); head learning rate {chosen.lr:g}"
                    + (f", the trained blocks at {chosen.backbone_lr_mult:g}x it." if chosen.preset != "feature_extraction"
                       else "."))
    return Advice(chosen, evidence, m, per_class=per_class, task_share=share)


def from_scratch(optimizer: str = "adamw") -> Advice:
    """The advice for a project without pretrained weights: nothing to transfer, so nothing to freeze."""
    return Advice(plan("full", optimizer=optimizer, scratch=True),
                  ["The model starts from random weights: nothing was learned that freezing could keep. Train "
                   "every layer (or choose pretrained weights and ask again)."], None)


def advise(project, stop=None, progress=None) -> Advice:
    """Measure the project's features per depth (`engine.advice.depth.measure`) and apply the rule."""
    from engine.advice.depth import measure

    if project.model.weights == "none":
        return from_scratch(project.train.optimizer)
    return recommend(measure(project, stop, progress), project.train.optimizer)
