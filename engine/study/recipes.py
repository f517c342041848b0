"""A transfer study's recipes: the ways one project is trained, by short name.

    scratch   random weights, every layer trained
    fe        feature extraction: the pretrained body frozen, the head trained
    lastN     the last N blocks and the head trained (N from 1 to the blocks less one)
    full      every layer of the pretrained model trained

Each is a freeze plan with the learning rates the advisor's rule gives it (`engine.advice.rule.plan`), so the
advisor's suggestion is always one of the recipes, with the same settings.
"""

from __future__ import annotations

import re

from engine.advice.rule import Plan, plan
from engine.errors import ThawError

DEFAULT = ("scratch", "fe", "last1", "last2", "full")
_NAME = re.compile(r"^(scratch|fe|full|last([1-9][0-9]*))$")


def parse(text: str, blocks: int) -> list[str]:
    """Recipe names from "scratch,fe,last1": each known and possible for a model of `blocks` blocks, no repeats."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ThawError("--recipes: name at least one recipe, e.g. scratch,fe,last1,last2,full")
    for name in names:
        match = _NAME.match(name)
        if not match:
            raise ThawError(f"--recipes: unknown recipe {name!r}; choose among scratch, fe, last1, last2, ..., full")
        if match.group(2) and int(match.group(2)) >= blocks:
            raise ThawError(f"--recipes: {name} trains {match.group(2)} of this model's {blocks} blocks; "
                            f"lastN goes up to last{blocks - 1} (all of them is 'full')")
    if len(set(names)) != len(names):
        raise ThawError(f"--recipes: a recipe is named twice in {text!r}")
    return names


def parse_per_class(text: str) -> tuple[int | None, ...]:
    """Images-per-class subsets from "5,10,all" (all: every training image), each once."""
    out: list[int | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "all":
            out.append(None)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise ThawError(f"--per-class: {part!r} is neither a whole number above 0 nor 'all'")
    if not out or len(set(out)) != len(out):
        raise ThawError("--per-class: give each subset once, e.g. 5,10,all")
    return tuple(out)


def default(blocks: int, suggested: Plan | None) -> list[str]:
    """scratch, fe, last1, last2, full, and the advisor's last N with its neighbours where N is larger."""
    lasts = {1, 2}
    if suggested is not None and suggested.preset == "last_blocks":
        lasts |= {suggested.last_blocks - 1, suggested.last_blocks, suggested.last_blocks + 1}
    return ["scratch", "fe", *(f"last{n}" for n in sorted(lasts) if 1 <= n < blocks), "full"]


def plan_of(name: str, blocks: int, optimizer: str) -> Plan:
    """The freeze plan and learning rates of a recipe."""
    if name == "scratch":
        return plan("full", optimizer=optimizer, scratch=True)
    if name == "fe":
        return plan("feature_extraction", optimizer=optimizer)
    if name == "full":
        return plan("full", blocks=blocks, optimizer=optimizer)
    return plan("last_blocks", int(name[4:]), blocks, optimizer)


def name_of(p: Plan) -> str:
    """The recipe a plan is (the advisor's suggestion, by name)."""
    if p.scratch:
        return "scratch"
    return {"feature_extraction": "fe", "full": "full"}.get(p.preset, f"last{p.last_blocks}")
