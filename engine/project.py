"""The project: one TOML file (``*.thaw.toml``) that holds everything a run needs.

The GUI edits a `Project`, the worker and ``python main.py train`` run it. Every value is checked
here against its key's rule, with a message that names the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import reprlib
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.errors import ProjectError
from engine.io.atomic import write_text_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUFFIX = ".thaw.toml"
# The choices of the keys that take a name; the engine's rooms import them from here.
AUGMENTS = ("none", "light", "strong")
PRESETS = ("feature_extraction", "last_blocks", "full", "custom")
HEAD_KINDS = ("linear", "cosine", "mlp", "keep")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("cosine", "onecycle", "step", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")


def _rule(**kw: Any) -> dict[str, Any]:
    return {"rule": kw}


@dataclass
class ModelSettings:
    arch: str = field(default="resnet18", metadata=_rule(nonempty=True))
    weights: str = field(default="pretrained", metadata=_rule(
        nonempty="choose \"pretrained\", \"none\" or a weights file"))


@dataclass
class DataSettings:
    train: str = ""  # required to run; checked with the paths, so a new project can start empty
    val: str = ""
    val_fraction: float = field(default=0.2, metadata=_rule(gt=0.0, lt=1.0))
    test: str = ""  # a test folder or CSV list; empty: a share is split off when test_fraction > 0
    test_fraction: float = field(default=0.0, metadata=_rule(ge=0.0, lt=1.0))  # 0: no test split
    image_size: int = field(default=224, metadata=_rule(ge=16, le=1024))
    augment: str = field(default="light", metadata=_rule(choices=AUGMENTS))


@dataclass
class FreezeSettings:
    preset: str = field(
        default="feature_extraction",
        metadata=_rule(choices=PRESETS),
    )
    last_blocks: int = field(default=1, metadata=_rule(ge=0, le=1000))
    frozen: list[str] = field(default_factory=list)
    train_frozen_bn: bool = False
    stages: list[dict] = field(default_factory=list)  # an unfreezing schedule (`STAGE_KEYS`); empty: none


@dataclass
class HeadSettings:
    kind: str = field(default="linear", metadata=_rule(choices=HEAD_KINDS))
    hidden: list[int] = field(default_factory=lambda: [256], metadata=_rule(ge=1, le=65536))
    dropout: float = field(default=0.2, metadata=_rule(ge=0.0, lt=1.0))


@dataclass
class TrainSettings:
    epochs: int = field(default=10, metadata=_rule(ge=1, le=100000))
    batch_size: int = field(default=32, metadata=_rule(ge=1, le=65536))
    optimizer: str = field(default="adamw", metadata=_rule(choices=OPTIMIZERS))
    lr: float = field(default=0.001, metadata=_rule(gt=0.0, le=10.0))
    backbone_lr_mult: float = field(default=0.1, metadata=_rule(ge=0.0, le=100.0))
    weight_decay: float = field(default=0.0001, metadata=_rule(ge=0.0, le=10.0))
    scheduler: str = field(default="cosine", metadata=_rule(choices=SCHEDULERS))
    label_smoothing: float = field(default=0.0, metadata=_rule(ge=0.0, lt=1.0))
    class_weights: bool = False
    early_stop_patience: int = field(default=0, metadata=_rule(ge=0, le=100000))
    device: str = field(default="auto", metadata=_rule(choices=DEVICES))
    amp: bool = True
    seed: int = field(default=0, metadata=_rule(ge=0, le=2**32 - 1))
    activity_every: int = field(default=50, metadata=_rule(ge=0, le=1_000_000))  # steps; 0: not measured
    activity_budget: float = field(default=0.02, metadata=_rule(ge=0.0, le=1.0))  # share of the time; 0: fixed
    out_dir: str = field(default="runs", metadata=_rule(nonempty=True))


SECTIONS: dict[str, type] = {
    "model": ModelSettings,
    "data": DataSettings,
    "freeze": FreezeSettings,
    "head": HeadSettings,
    "train": TrainSettings,
}


@dataclass
class Project:
    name: str = "untitled"
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    freeze: FreezeSettings = field(default_factory=FreezeSettings)
    head: HeadSettings = field(default_factory=HeadSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    # Folder that relative paths resolve against: the project file's folder (not saved in the file).
    base_dir: Path = field(default_factory=Path.cwd, compare=False, repr=False)

    def resolve(self, path: str) -> Path:
        """A path from the project, made absolute against the project file's folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else (self.base_dir / p)

    def copy(self) -> Project:
        return dataclasses.replace(
            self, **{name: dataclasses.replace(getattr(self, name)) for name in SECTIONS}
        )

    def get(self, key: str) -> Any:
        """Value of a dotted key such as ``train.lr`` (or ``name``)."""
        section, _, attr = key.rpartition(".")
        return getattr(getattr(self, section) if section else self, attr)

    def set(self, key: str, value: Any) -> None:
        """Set a dotted key after checking the value; raises `ProjectError` naming the key."""
        section, _, attr = key.rpartition(".")
        if section and section not in SECTIONS:
            raise ProjectError(key, f"unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if not section and attr in SECTIONS:
            raise ProjectError(key, f"[{attr}] is a section; set one of its keys, e.g. {attr}.<key>")
        target = getattr(self, section) if section else self
        known = {f.name: f for f in fields(target) if f.name != "base_dir"}
        if attr not in known:
            raise ProjectError(key, f"unknown key; known keys here: {', '.join(known)}")
        setattr(target, attr, _check_value(key, known[attr], value))


# ---------------------------------------------------------------- checking values


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 3, 8, 80, 80


def _shown(value: Any) -> str:
    """A value as a message shows it: a deeply nested or long one cut short, not printed whole."""
    return _SHORT.repr(value)


def _is_utf8(text: str) -> bool:
    """False for a name Python read from the disk with bytes that are not UTF-8 (held as surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _type_name(t: Any) -> str:
    return {"str": "a string", "int": "a whole number", "float": "a number", "bool": "true or false",
            "list[str]": "a list of strings", "list[int]": "a list of whole numbers"}[str(t)]


# freeze.stages: each stage a table of these keys (the schedule's meaning: engine.model.schedule).
STAGE_KEYS: dict[str, tuple[str, dict[str, Any]]] = {
    "start": ("int", {"ge": 0, "le": 100000}),          # epochs completed before the stage begins
    "unfreeze": ("int", {"ge": 1, "le": 1000}),         # the next N blocks below the trainable ones
    "frozen": ("list[str]", {}),                        # or: exactly these layers frozen ([] for none)
    "lr_mult": ("float", {"gt": 0.0, "le": 100.0}),     # the head's rate, x train.lr
    "backbone_lr_mult": ("float", {"ge": 0.0, "le": 100.0}),  # the top block's rate, x the head's
    "layer_decay": ("float", {"gt": 0.0, "le": 1.0}),   # each lower block's rate, x this
    "growth": ("float", {"gt": 0.0, "le": 100.0}),      # the backbone's rates, x this per epoch of the stage
}


def _check_stages(key: str, value: Any) -> list[dict[str, Any]]:
    """freeze.stages: tables of `STAGE_KEYS`, starts rising; a stage at 0 only sets the first epochs' rates."""
    if not isinstance(value, list):
        raise ProjectError(key, f"must be a list of tables such as {{start = 2, unfreeze = 1}}, not {value!r}")
    out: list[dict[str, Any]] = []
    for i, stage in enumerate(value):
        at = f"{key}[{i}]"
        if not isinstance(stage, dict):
            raise ProjectError(at, f"must be a table such as {{start = 2, unfreeze = 1}}, not {stage!r}")
        unknown = sorted(set(stage) - set(STAGE_KEYS))
        if unknown:
            raise ProjectError(f"{at}.{unknown[0]}", f"unknown key; known keys here: {', '.join(STAGE_KEYS)}")
        if "start" not in stage:
            raise ProjectError(f"{at}.start", "missing: the epochs completed before this stage begins")
        checked = {}
        for name, (kind, rule) in STAGE_KEYS.items():
            if name in stage:
                v = stage[name]
                if kind == "list[str]" and not isinstance(v, list):
                    raise ProjectError(f"{at}.{name}", f"must be a list of strings (layer paths), not {v!r}")
                checked[name] = ([_check_scalar(f"{at}.{name}[{j}]", "str", x, rule) for j, x in enumerate(v)]
                                 if kind == "list[str]" else _check_scalar(f"{at}.{name}", kind, v, rule))
        if "unfreeze" in checked and "frozen" in checked:
            raise ProjectError(f"{at}.unfreeze", "give either unfreeze (the next N blocks) or frozen, not both")
        if out and checked["start"] <= out[-1]["start"]:
            raise ProjectError(f"{at}.start", f"must be after the stage before it (start {out[-1]['start']})")
        if checked["start"] == 0 and ("unfreeze" in checked or "frozen" in checked):
            raise ProjectError(f"{at}.start", "a stage from epoch 0 sets rates only: the first epochs' layers are "
                                              "freeze.preset's; start it later to change them")
        out.append(checked)
    return out


def _check_scalar(key: str, kind: str, value: Any, rule: dict[str, Any]) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise ProjectError(key, f"must be true or false, not {_shown(value)}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ProjectError(key, f"must be a string, not {_shown(value)}")
        if not value.isascii() and not _is_utf8(value):
            raise ProjectError(key, f"{_shown(value)} holds bytes that are not UTF-8 text (a name from another "
                                    "system?), which a project file cannot hold; rename that folder or file")
        if rule.get("nonempty") and not value.strip():
            hint = rule["nonempty"]
            raise ProjectError(key, hint if isinstance(hint, str) else "must not be empty")
        if "choices" in rule and value not in rule["choices"]:
            raise ProjectError(key, f"must be one of {', '.join(map(repr, rule['choices']))}, not {_shown(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProjectError(key, f"must be a whole number, not {_shown(value)}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProjectError(key, f"must be a number, not {_shown(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise ProjectError(key, f"must be a finite number, not {value!r}")
    for op, bound, ok in (
        ("ge", ">=", lambda v, b: v >= b),
        ("gt", ">", lambda v, b: v > b),
        ("le", "<=", lambda v, b: v <= b),
        ("lt", "<", lambda v, b: v < b),
    ):
        if op in rule and not ok(value, rule[op]):
            raise ProjectError(key, f"must be {bound} {rule[op]}, not {_shown(value)}")
    return value


def _check_value(key: str, f: dataclasses.Field, value: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    rule = f.metadata.get("rule", {})
    if kind == "list[dict]":
        return _check_stages(key, value)
    if kind.startswith("list["):
        item = kind[5:-1]
        if not isinstance(value, list):
            raise ProjectError(key, f"must be {_type_name(kind)}, not {_shown(value)}")
        return [_check_scalar(f"{key}[{i}]", item, v, rule) for i, v in enumerate(value)]
    return _check_scalar(key, kind, value, rule)


# ---------------------------------------------------------------- loading and saving


def from_dict(data: dict[str, Any], base_dir: str | os.PathLike | None = None) -> Project:
    """Build a checked project from parsed TOML; missing keys take their defaults, unknown keys are errors."""
    if not isinstance(data, dict):
        raise ProjectError("", "a project must be a TOML table")
    project = Project(base_dir=Path(base_dir) if base_dir is not None else Path.cwd())
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ProjectError(key, f"must be a table [{key}], not {_shown(value)}")
            for sub, subvalue in value.items():
                project.set(f"{key}.{sub}", subvalue)
        elif key == "name":
            project.set("name", value)
        else:
            raise ProjectError(key, f"unknown key; known: name, {', '.join(SECTIONS)}")
    return project


def _parse(text: str) -> dict[str, Any]:
    """Parsed TOML; `ProjectError` for text that is not TOML, or nests lists so deep the parser gives up."""
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))  # Windows Notepad's byte-order mark
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError("", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ProjectError(_deepest_key(text), "lists nested too deeply; a value here is at most a list of "
                                               "numbers or strings") from None


def _deepest_key(text: str) -> str:
    """The dotted key whose value opens the most brackets in a row (what made the parser give up)."""
    section, best, depth = "", "", 0
    for line in text.splitlines():
        header = re.match(r"\s*\[([^\[\]]+)\]\s*$", line)
        if header:
            section = header.group(1).strip()
            continue
        m = re.match(r"\s*([\w.\-\"' ]+?)\s*=\s*(\[+)", line)
        if m and len(m.group(2)) > depth:
            key = m.group(1).strip().strip("\"'")
            best, depth = f"{section}.{key}" if section else key, len(m.group(2))
    return best


def loads(text: str, base_dir: str | os.PathLike | None = None,
          overrides: list[str] | tuple[str, ...] = ()) -> Project:
    """A checked project from TOML text; `overrides` (``section.key=value``) replace the file's values before
    they are checked, so an override can mend a value the file has wrong."""
    data = _parse(text)
    pairs = [parse_override(a) for a in overrides]
    for key, _ in pairs:
        section, _, attr = key.rpartition(".")
        table = data.get(section) if section else data
        if isinstance(table, dict):
            table.pop(attr, None)
    project = from_dict(data, base_dir)
    for key, value in pairs:
        project.set(key, value)
    return project


def load(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> Project:
    """Read a project file and check its values (after `overrides`, see `loads`); relative paths in it resolve
    against its folder. Whether the project can run (paths, weights, data, device) is `engine.preflight`'s."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError("", f"project file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError("", f"cannot read project file {path}: {exc}") from None
    return loads(text, base_dir=path.resolve().parent, overrides=overrides)


def to_dict(project: Project) -> dict[str, Any]:
    out: dict[str, Any] = {"name": project.name}
    for section in SECTIONS:
        out[section] = dataclasses.asdict(getattr(project, section))
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table (a schedule's stage)
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} to TOML")


def dumps(project: Project) -> str:
    data = to_dict(project)
    lines = [f"name = {_toml_value(data.pop('name'))}"]
    for section, values in data.items():
        lines.append("")
        lines.append(f"[{section}]")
        for k, v in values.items():
            if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):  # one stage a line
                lines.append(f"{k} = [\n" + "".join(f"    {_toml_value(x)},\n" for x in v) + "]")
            else:
                lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def rebased(project: Project, new_base: str | os.PathLike) -> Project:
    """A copy whose relative paths still point at the same places when saved in `new_base`."""
    new_base = Path(new_base).resolve()
    out = project.copy()
    out.base_dir = new_base
    if new_base == Path(project.base_dir).resolve():
        return out
    for key in PATH_KEYS:
        value = project.get(key)
        if value and value not in ("pretrained", "none") and not Path(value).is_absolute():
            target = project.resolve(value).resolve()
            try:
                out.set(key, os.path.relpath(target, new_base))
            except ValueError:  # another drive on Windows
                out.set(key, str(target))
    return out


def save(project: Project, path: str | os.PathLike) -> Project:
    """Write the project atomically; returns it rebased on the file's folder (relative paths kept valid)."""
    path = Path(path)
    project = rebased(project, path.resolve().parent)
    write_text_atomic(path, dumps(project))
    return project


def parse_override(assignment: str) -> tuple[str, Any]:
    """``section.key=value`` as (key, value): the value in TOML syntax, a bare word a string."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ProjectError(assignment, "an override must look like section.key=value")
    try:
        return key, tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, raw.strip()
    except RecursionError:
        raise ProjectError(key, "lists nested too deeply; a value here is at most a list of numbers or "
                                "strings") from None


def apply_overrides(project: Project, assignments: list[str]) -> Project:
    """Apply ``section.key=value`` strings (values in TOML syntax; bare words are strings)."""
    out = project.copy()
    for assignment in assignments:
        out.set(*parse_override(assignment))
    return out


# ---------------------------------------------------------------- checking a whole project

PATH_KEYS = ("model.weights", "data.train", "data.val", "data.test", "train.out_dir")
KEYS = ("name", *(f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in fields(cls)))


def value_problems(project: Project) -> list[ProjectError]:
    """Every value the project holds that breaks its key's rule (type, range, choices), e.g. one set directly
    rather than through `Project.set`. What the values mean for a run is `engine.preflight`'s."""
    found: list[ProjectError] = []
    for key in KEYS:
        section, _, attr = key.rpartition(".")
        owner = getattr(project, section) if section else project
        f = next(f for f in fields(owner) if f.name == attr)
        try:
            _check_value(key, f, project.get(key))
        except ProjectError as exc:
            found.append(exc)
    return found
