"""A project's model, ready to train: architecture, weights, new head, freeze plan, input size.

`assemble` is what training runs; `skeleton` is the same model on the meta device without weights, so the
GUI and ``python main.py layers`` can show the tree of a 600M-parameter network in a moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from engine.errors import ProjectError, WeightsError
from engine.io.weights import loadable
from engine.model import zoo
from engine.model.checklist import plan_from_project
from engine.model.freezing import FreezePlan, apply_plan
from engine.model.heads import HeadSpec, keep_head, replace_head


@dataclass
class Assembled:
    model: nn.Module
    head_paths: list[str]
    plan: FreezePlan
    info: zoo.ArchInfo
    image_size: int                      # the size the model gets (the project's, raised to the rules)
    num_classes: int
    notes: list[str] = field(default_factory=list)  # what was adjusted, in words


def _finish(model: nn.Module, project, num_classes: int, info: zoo.ArchInfo, notes: list[str],
            classes: list[str] | None = None, freeze: bool = True) -> Assembled:
    if project.head.kind == "keep":
        try:
            source = zoo.source_classes(project.model.arch) if classes is not None else None
            head_paths = keep_head(model, source, classes)
        except ValueError as exc:
            raise ProjectError("head.kind", str(exc)) from None
    else:
        head_paths = replace_head(model, HeadSpec.from_project(project.head), num_classes)
    plan = FreezePlan()
    if freeze:
        plan = plan_from_project(model, project.freeze, head_paths)
        apply_plan(model, plan, head_paths)
    size, size_notes = zoo.effective_image_size(info, project.data.image_size)
    return Assembled(model=model, head_paths=head_paths, plan=plan, info=info, image_size=size,
                     num_classes=num_classes, notes=notes + size_notes)


def assemble(project, num_classes: int, device: str | torch.device = "cpu",
             classes: list[str] | None = None) -> Assembled:
    """Build the project's model with its weights, new (or kept) head and applied freeze plan, on `device`.

    A kept head (``head.kind = "keep"``) needs the data's class names, `classes`, to pick its outputs."""
    if project.head.kind == "keep" and classes is None:
        raise ProjectError("head.kind", "keeping the source's head needs the data's class names")
    info = zoo.arch_info(project.model.arch)
    notes: list[str] = []
    model = zoo.build_model(project.model.arch, project.model.weights, base_dir=project.base_dir, notes=notes)
    out = _finish(model, project, num_classes, info, notes, classes)
    out.model.to(device)
    return out


def rebuilt(project, classes: list[str], state: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> Assembled:
    """A run's trained model: the project's structure, head and all, with the run's saved state dict, nothing
    frozen. Built without the pretrained weights (the saved state replaces them), so it works on a machine
    that lacks them; a state dict of another structure is a `WeightsError`."""
    info = zoo.arch_info(project.model.arch)
    model = zoo.build_model(project.model.arch, "none")
    out = _finish(model, project, len(classes), info, [], classes, freeze=False)
    try:
        out.model.load_state_dict(loadable(out.model, state), strict=True)
    except (RuntimeError, ValueError) as exc:
        raise WeightsError(f"the saved model does not fit {project.model.arch} with this head: "
                           f"{str(exc).splitlines()[0]}") from None
    out.model.to(device).eval()
    return out


def skeleton(project, num_classes: int, classes: list[str] | None = None, freeze: bool = True) -> Assembled:
    """The same structure and plan on the meta device, without weights: for display only. A kept head keeps
    all its outputs unless `classes` names the data's classes. `freeze=False` leaves the freeze plan out
    (nothing frozen): the layer checklist shows the project's plan itself, even one that does not fit."""
    info = zoo.arch_info(project.model.arch)
    model = zoo.build_skeleton(project.model.arch)
    with torch.device("meta"):  # the new head too: a head of 4G parameters took 17 GB (and 20 s) to be shown
        return _finish(model, project, num_classes, info, [], classes, freeze)
