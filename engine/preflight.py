"""Everything that can be known about a project before it trains, checked in one place.

`preflight` lists one `ProjectError` per problem, each naming its key, so that the command line (which stops at
the first), the window's Start button and each set-up panel (which marks the fields whose keys it owns) say the
same thing in the same words. What it checks: the values' own rules, the architecture, the weights (the
pretrained file on this machine, or a file's suffix and that its tensors fit the architecture, from its header
where the format allows), a custom freeze plan's and an unfreezing schedule's layer names (and its stages
that start after the last epoch: a warning), the head, the device, the memory training takes
(`engine.model.footprint`) against this machine's, the data paths, the output folder (never inside the data), the
validation and test shares together and, given a scan of the sources, the classes and the split. Warnings
(`ProjectError.warning`) do not stop a run: the run does something the setting does not say (an input size the
architecture forces) and says so.
"""

from __future__ import annotations

from engine.device import device_problem, ram_bytes, training_memory
from engine.errors import ProjectError, ThawError
from engine.io.space import run_bytes, space_problem
from engine.model import zoo
from engine.model.checklist import unknown_names, unknown_names_error
from engine.model.footprint import footprint
from engine.model.heads import missing_source_classes
from engine.model.modpath import under
from engine.project import Project, value_problems
from engine.sources import (
    Sources,
    output_problem,
    path_problems,
    share_problems,
    source_problems,
    source_warnings,
)


def preflight(project: Project, scan: Sources | None = None) -> list[ProjectError]:
    """Every problem with `project` that can be known now (empty when it can run); `scan` is
    `engine.sources.scan_sources(project)` where the caller has it (the data checks need it)."""
    found = value_problems(project)
    bad = {e.key for e in found}
    stages_valid = not any(k.startswith("freeze.stages") for k in bad)  # else the stages are not read further

    def add(key: str, problem: str | None, warning: bool = False) -> None:
        if problem and key not in bad:
            found.append(ProjectError(key, problem, warning=warning))
            bad.add(key)

    arch = project.model.arch
    known = zoo.is_known_arch(arch)
    add("model.arch", zoo.arch_problem(arch))
    for key, problem in path_problems(project) + share_problems(project):
        add(key, problem)
    if project.train.out_dir.strip():
        add("train.out_dir", output_problem(project, project.resolve(project.train.out_dir)))
    if known:
        add("model.weights", zoo.weights_problem(arch, project.model.weights, project.base_dir))
        for note in zoo.effective_image_size(zoo.arch_info(arch), project.data.image_size)[1]:
            add("data.image_size", note, warning=True)
        add("freeze.frozen", _freeze_problem(project))
        for key, problem in _stage_problems(project) if stages_valid else ():
            add(key, problem)
        add("train.out_dir", _space_problem(project))
    for key, problem in _stage_warnings(project) if stages_valid else ():
        add(key, problem, warning=True)
    add("head.kind", _head_problem(project, scan))
    problem = device_problem(project.train.device)
    add("train.device", problem.problem if problem else None)
    if known and not problem:
        add(*_memory_problem(project, scan))
    if scan is not None:  # errors before warnings: a key keeps its first problem
        for key, problem in source_problems(project, scan):
            add(key, problem)
        for key, problem in source_warnings(project, scan):
            add(key, problem, warning=True)
    return found


def blocking(found: list[ProjectError]) -> list[ProjectError]:
    """The problems that stop a run (warnings left out)."""
    return [e for e in found if not e.warning]


def raise_first(project: Project, scan: Sources | None = None) -> None:
    """Raise the first problem that stops `project` from running, if any."""
    errors = blocking(preflight(project, scan))
    if errors:
        raise errors[0]


def _unknown(project: Project, frozen: list[str]) -> str | None:
    """Names that are not the architecture's layers (the new head aside: it always trains)."""
    facts = zoo.skeleton_facts(project.model.arch)
    classifier, aux = facts.classifier_paths[:1], facts.classifier_paths[1:]
    names = {n for n in facts.names if not under(n, aux)}  # auxiliary heads are removed from a run's model
    unknown = unknown_names(frozen, names, classifier)
    return unknown_names_error(unknown).problem if unknown else None


def _freeze_problem(project: Project) -> str | None:
    """A custom plan's names must be the architecture's layers."""
    return _unknown(project, project.freeze.frozen) if project.freeze.preset == "custom" else None


def _stage_problems(project: Project) -> list[tuple[str, str]]:
    """A schedule's stages that name layers (`frozen`) must name the architecture's."""
    return [(f"freeze.stages[{i}].frozen", problem) for i, stage in enumerate(project.freeze.stages)
            if (problem := _unknown(project, stage.get("frozen", [])))]


def _stage_warnings(project: Project) -> list[tuple[str, str]]:
    """A stage that starts once the run is over never runs."""
    epochs = project.train.epochs
    return [(f"freeze.stages[{i}].start", f"starts after epoch {stage['start']}, but the run has "
             f"{epochs} (train.epochs): it never runs") for i, stage in enumerate(project.freeze.stages)
            if stage["start"] >= epochs]


def _space_problem(project: Project) -> str | None:
    """The output folder's disk must hold the run's checkpoints (estimated from the architecture's parameter
    count, 4 bytes each; the run checks again with its real model)."""
    params = zoo.arch_info(project.model.arch).num_params
    if not params or not project.train.out_dir.strip():
        return None
    return space_problem(project.resolve(project.train.out_dir), run_bytes(4 * params, project.train.optimizer))


def _memory_problem(project: Project, scan: Sources | None) -> tuple[str, str | None]:
    """(key, why) when the model cannot train in this machine's memory (`engine.model.footprint`: the least it
    needs), naming the setting that makes it large: the head's hidden layers, else the architecture."""
    try:
        fp = footprint(project, len(scan.classes) if scan is not None and len(scan.classes) > 1 else 2)
    except (ThawError, ValueError, RuntimeError):  # a head or plan the model refuses: its key says why
        return "model.arch", None
    opt = project.train.optimizer
    where, limit = training_memory(project.train.device)
    on_gpu = where != "RAM"
    needs = [(where, limit, fp.on_device(opt) + (0 if on_gpu else fp.kept_copy(opt)))]
    if on_gpu:
        needs.append(("RAM", ram_bytes(), fp.kept_copy(opt)))
    for what, limit, need in needs:
        if limit and need > limit:
            big_head = project.head.kind == "mlp" and 2 * fp.head > fp.total
            fix = (f"the head's hidden layers {project.head.hidden} hold {fp.head:,} of them: make them smaller"
                   if big_head else "choose a smaller architecture, or freeze more of it (feature extraction "
                                    "trains the head alone)")
            return ("head.hidden" if big_head else "model.arch",
                    f"training this model needs at least {need / 2**30:,.1f} GiB of {what} ({fp.total:,} parameters, "
                    f"{fp.trainable:,} trainable, with their gradients, the optimizer's state and the copy kept to "
                    f"recover from running out of memory), more than the {limit / 2**30:,.1f} GiB this machine has; "
                    f"{fix}")
    return "model.arch", None


def _head_problem(project: Project, scan: Sources | None) -> str | None:
    """Keeping the source's head needs the weights whose class names are known, and the data's classes among them."""
    if project.head.kind != "keep":
        return None
    if project.model.weights != "pretrained":
        return ("keeping the source's head needs model.weights = \"pretrained\" (the weights whose class names are "
                "known); choose a new head")
    if scan is None or not scan.classes or not zoo.is_known_arch(project.model.arch):
        return None
    return missing_source_classes(zoo.source_classes(project.model.arch), scan.classes)
