"""The layer checklist as data: a model's rows, what each one freezes, the edits a person makes, and the
project's [freeze] settings they turn into (and back).

The freeze state is one flag per *unit*: a module that holds tensors of its own. For a module that also has
children (ViT's root with ``class_token``, its ``encoder`` with ``pos_embedding``) the unit is its own
"loose" tensors, which a plan names one by one. Edits only set unit flags; every row's state is derived from
its subtree, and `frozen_paths` turns the flags back into the fewest paths that cover them: what a
`FreezePlan` holds. Presets are flag patterns over the rows in pre-order (input to output, a module's own
tensors before its children): "last N blocks" freezes every unit before the N-th block from the end. So the
same object builds the plans training runs (`plan_for`) and shows them in the window, and a set of ticks
that equals a preset is that preset, not "custom".

Rows are numbered in pre-order, so a subtree is a contiguous range and all derived state is a few numpy
prefix sums: cheap even for models with thousands of modules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable, Sequence
from itertools import chain
from typing import Any

import numpy as np
from torch import nn

from engine.errors import ProjectError
from engine.model.freezing import FreezePlan
from engine.model.heads import heads_of, output_layers
from engine.model.layers import describe, model_names, walk
from engine.model.modpath import join, under
from engine.project import PRESETS

DEFAULT_PRESET = "feature_extraction"

# Row states, derived from the unit flags.
NO_PARAMS, TRAINABLE, FROZEN, PARTLY, HEAD = range(5)
UNKNOWN_COUNT = "The head's parameters follow from the number of classes, found by the data scan."


def unknown_names(names: Iterable[str], known: Collection[str], head_paths: Sequence[str]) -> list[str]:
    """The names of a custom plan that are neither a module path nor a tensor name of the model. A name
    inside the head is never unknown: the head is always trained, so naming it freezes nothing."""
    return sorted(n for n in set(names) if n not in known and not under(n, head_paths))


def unknown_names_error(unknown: Sequence[str]) -> ProjectError:
    return ProjectError("freeze.frozen", f"no layer named {', '.join(map(repr, unknown[:5]))} in this model; see "
                                         "`python main.py layers PROJECT` for the paths")


class Checklist:
    """The rows of one model's layer tree with a freeze flag per unit; heads are always trainable.

    `classes_known=False`: the model's head was sized for a stand-in number of classes (the data is not scanned
    yet), so the counts of the rows that hold its output layer are unknown (`counts`), not a number that changes
    once the classes are found."""

    def __init__(self, model: nn.Module, head_paths: Sequence[str] = (), classes_known: bool = True) -> None:
        self.head_paths = heads_of(model, head_paths)
        infos = list(walk(describe(model, head_paths=self.head_paths)))  # pre-order, as the rows are numbered
        self.infos = infos
        self.blocks = [x.path for x in infos if x.is_block]  # input to output, as `layers.blocks` lists them
        self._by_path = {x.path: i for i, x in enumerate(infos)}
        n = len(infos)
        parent = np.full(n, -1, dtype=np.int64)
        self.children: list[list[int]] = [[] for _ in range(n)]
        self.row = np.zeros(n, dtype=np.int64)  # position among its siblings
        for i, x in enumerate(infos):
            for k, c in enumerate(x.children):
                j = self._by_path[c.path]
                parent[j], self.row[j] = i, k
                self.children[i].append(j)
        self.parent = parent
        end = np.arange(1, n + 1)
        for i in range(n - 1, -1, -1):  # children come after their parent: fold subtree ends upwards
            if self.children[i]:
                end[i] = end[self.children[i][-1]]
        self.end = end
        modules = dict(model.named_modules())
        own = [[join(x.path, name) for name, _ in chain(modules[x.path].named_parameters(recurse=False),
                                                         modules[x.path].named_buffers(recurse=False))]
               for x in infos]
        self.loose = [names if x.children else [] for names, x in zip(own, infos, strict=True)]
        self.own_params = np.array([x.own_params for x in infos], dtype=np.int64)
        self.unit = np.array([bool(names) for names in own], dtype=bool)
        self.head = np.array([under(x.path, self.head_paths) for x in infos], dtype=bool)
        self.editable = self.unit & ~self.head
        self._n_editable = self._subtree_sum(self.editable)
        self.names = model_names(model)
        self._starts = [self._by_path[b] for b in self.blocks]
        sized = np.zeros(n, dtype=bool)
        if not classes_known:
            sized[[self._by_path[p] for p in output_layers(model, self.head_paths)]] = True
        self._uncounted = self._subtree_sum(sized) > 0  # rows whose counts include a head sized by a guess
        self.frozen = np.zeros(n, dtype=bool)
        self._derive()

    # ------------------------------------------------------------ rows

    def __len__(self) -> int:
        return len(self.infos)

    def index(self, path: str) -> int:
        return self._by_path[path]

    def has(self, path: str) -> bool:
        return path in self._by_path

    def state(self, path: str) -> int:
        return int(self.states[self._by_path[path]])

    def can_edit(self, row: int) -> bool:
        """Whether ticking or unticking a row (by index) can change anything: it holds a unit that is not the head."""
        return bool(self._n_editable[row])

    def _subtree_sum(self, values: np.ndarray) -> np.ndarray:
        """Each row's sum of `values` over its subtree (a contiguous range in pre-order)."""
        c = np.concatenate(([0], np.cumsum(values)))
        return c[self.end] - c[np.arange(len(self.infos))]

    def _derive(self) -> None:
        """Every row's state and its subtree's trainable parameter count, from the unit flags."""
        n = len(self.infos)
        frozen = self.frozen & self.editable
        n_frozen, n_edit = self._subtree_sum(frozen), self._n_editable
        n_head = self._subtree_sum(self.unit & self.head)
        state = np.full(n, PARTLY, dtype=np.int8)
        state[n_frozen == 0] = TRAINABLE
        state[(n_frozen == n_edit) & (n_head == 0) & (n_edit > 0)] = FROZEN
        state[(n_edit == 0) & (n_head > 0)] = HEAD
        state[(n_edit == 0) & (n_head == 0)] = NO_PARAMS
        self.states = state
        self.trainable = self._subtree_sum(np.where(frozen, 0, self.own_params))

    def counts(self, row: int) -> tuple[int, int] | None:
        """(parameters, trainable parameters) of a row's subtree; None while they follow from the number of
        classes, not known yet (`UNKNOWN_COUNT`)."""
        if self._uncounted[row]:
            return None
        return self.infos[row].total_params, int(self.trainable[row])

    def head_params(self) -> int | None:
        """The parameters of the head(s); None while they follow from the number of classes, not known yet."""
        rows = [self._by_path[h] for h in self.head_paths if h in self._by_path]
        if any(self._uncounted[i] for i in rows):
            return None
        return sum(self.infos[i].total_params for i in rows)

    def summary(self) -> tuple[int | None, int | None, int, int]:
        """(trainable parameters, all parameters, frozen layers, layers); a layer is a module with own parameters.
        The counts are None while the head's size is unknown (`counts`)."""
        if not len(self):
            return 0, 0, 0, 0
        layers = self.own_params > 0
        total, trainable = self.counts(0) or (None, None)
        return trainable, total, int((self.frozen & layers).sum()), int(layers.sum())

    def segments(self) -> list[tuple[str, int, int]]:
        """(path, own parameters, FROZEN / TRAINABLE / HEAD) of every module with own parameters, input to output."""
        return [(self.infos[i].path, int(self.own_params[i]),
                 HEAD if self.head[i] else FROZEN if self.frozen[i] else TRAINABLE)
                for i in np.flatnonzero(self.own_params > 0)]

    def block_states(self) -> list[tuple[str, int]]:
        """(path, state) of each block, then each head that is not a block: the units of "last N"."""
        out = [(b, self.state(b)) for b in self.blocks]
        return out + [(h, HEAD) for h in self.head_paths if h not in self.blocks and self.has(h)]

    # ------------------------------------------------------------ flags in and out

    def _set(self, flags: np.ndarray) -> np.ndarray:
        """Take new unit flags; the rows whose state or own flag changed (to repaint)."""
        flags = flags & self.editable
        old_state, old_frozen = self.states, self.frozen
        self.frozen = flags
        self._derive()
        return np.flatnonzero((old_state != self.states) | (old_frozen != self.frozen))

    def with_flags(self, flags: np.ndarray) -> Checklist:
        """A copy with these unit flags (the rows are shared: edits rebind the flags, never change them in place)."""
        other = copy.copy(self)
        other._set(flags.copy())
        return other

    def set_frozen(self, is_frozen: Callable[[str], bool]) -> np.ndarray:
        """Set every unit from a predicate over paths (e.g. `FreezePlan.is_frozen`)."""
        flags = np.zeros(len(self), dtype=bool)
        for i in np.flatnonzero(self.editable):
            names = self.loose[i]
            flags[i] = is_frozen(names[0] if names else self.infos[i].path)
        return self._set(flags)

    def frozen_paths(self) -> frozenset[str]:
        """The fewest paths that freeze exactly the frozen units: whole modules where possible, else tensors."""
        whole = self.states == FROZEN
        parent_whole = np.append(whole, False)[self.parent]  # index -1 (the root's parent) reads False
        out = {self.infos[i].path for i in np.flatnonzero(whole & ~parent_whole)}
        for i in np.flatnonzero(self.frozen & ~whole):  # loose tensors of a partly frozen module
            out.update(self.loose[i])
        return frozenset(out)

    # ------------------------------------------------------------ edits a person makes

    def set_trainable(self, path: str, trainable: bool) -> np.ndarray:
        """Tick or untick a row: applies to every unit inside it."""
        i = self._by_path[path]
        flags = self.frozen.copy()
        flags[i : self.end[i]] = not trainable
        return self._set(flags)

    def freeze_up_to(self, path: str) -> np.ndarray:
        """Freeze every unit from the input up to and including this row's subtree; later units are kept."""
        flags = self.frozen.copy()
        flags[: self.end[self._by_path[path]]] = True
        return self._set(flags)

    def unfreeze_from(self, path: str) -> np.ndarray:
        """Make every unit from this row to the output trainable; earlier units are kept."""
        flags = self.frozen.copy()
        flags[self._by_path[path] :] = False
        return self._set(flags)

    def freeze_only(self, path: str) -> np.ndarray:
        """Freeze this row's subtree and nothing else."""
        i = self._by_path[path]
        flags = np.zeros_like(self.frozen)
        flags[i : self.end[i]] = True
        return self._set(flags)

    # ------------------------------------------------------------ presets and settings

    def preset_flags(self, preset: str, last_blocks: int = 1) -> np.ndarray:
        """The unit flags of a preset: all but the head frozen, the last N blocks trainable, or none frozen."""
        if preset not in ("feature_extraction", "last_blocks", "full"):
            raise ProjectError("freeze.preset", f"must be one of {', '.join(PRESETS)}, not {preset!r}")
        n = last_blocks if preset == "last_blocks" else 0 if preset == "feature_extraction" else len(self.blocks)
        if n >= len(self.blocks):
            return np.zeros(len(self), dtype=bool)
        end = self._starts[-n] if n > 0 else len(self)
        return self.editable & (np.arange(len(self)) < end)

    def apply_preset(self, preset: str, last_blocks: int = 1) -> np.ndarray:
        return self._set(self.preset_flags(preset, last_blocks))

    def load(self, freeze: Any) -> ProjectError | None:
        """Show a project's [freeze] section; a custom plan naming layers this model lacks is the error
        returned, and its known names are shown."""
        if freeze.preset != "custom":
            self.apply_preset(freeze.preset, freeze.last_blocks)
            return None
        self.set_frozen(FreezePlan(frozenset(freeze.frozen)).is_frozen)
        unknown = unknown_names(freeze.frozen, self.names, self.head_paths)
        return unknown_names_error(unknown) if unknown else None

    def fit(self, freeze: Any) -> str | None:
        """Load `freeze`; a custom plan that does not fit this model (another architecture's layer names) is
        reset to the default preset, and what was done is returned in words."""
        error = self.load(freeze)
        if error is None:
            return None
        freeze.preset, freeze.frozen = DEFAULT_PRESET, []
        self.apply_preset(DEFAULT_PRESET)
        return f"the custom freeze plan does not fit this model ({error.problem}); reset to feature extraction"

    def matching_preset(self) -> tuple[str, int | None]:
        """The preset whose flags equal the current ones, with its N for "last N blocks" (None otherwise);
        ("custom", None) when no preset does."""
        flags = self.frozen & self.editable
        if not flags.any():
            return "full", None
        if np.array_equal(flags, self.editable):
            return "feature_extraction", None
        for n in range(1, len(self.blocks)):
            if np.array_equal(flags, self.preset_flags("last_blocks", n)):
                return "last_blocks", n
        return "custom", None

    def store(self, freeze: Any) -> None:
        """Write the current ticks into a [freeze] section: as the preset they equal, else as custom paths."""
        preset, n = self.matching_preset()
        freeze.preset = preset
        freeze.frozen = sorted(self.frozen_paths()) if preset == "custom" else []
        if n is not None:
            freeze.last_blocks = n

    def plan(self, train_frozen_bn: bool = False) -> FreezePlan:
        return FreezePlan(self.frozen_paths(), train_frozen_bn)


def plan_for(model: nn.Module, preset: str, last_blocks: int = 1, frozen: Iterable[str] = (),
             train_frozen_bn: bool = False, head_paths: Sequence[str] = ()) -> FreezePlan:
    """A plan from a preset: everything but the head frozen, the last N blocks trainable, all, or `frozen`
    (custom: module paths or tensor names, as given; `ProjectError` for a name the model lacks)."""
    if preset == "full":
        return FreezePlan(frozenset(), train_frozen_bn)
    heads = heads_of(model, head_paths)
    if preset == "custom":
        names = frozenset(frozen)
        unknown = unknown_names(names, model_names(model), heads)
        if unknown:
            raise unknown_names_error(unknown)
        return FreezePlan(names, train_frozen_bn)
    checklist = Checklist(model, heads)
    checklist.apply_preset(preset, last_blocks)
    return checklist.plan(train_frozen_bn)


def plan_from_project(model: nn.Module, freeze: Any, head_paths: Sequence[str]) -> FreezePlan:
    """From a project's [freeze] section (`engine.project.FreezeSettings`)."""
    return plan_for(model, freeze.preset, last_blocks=freeze.last_blocks, frozen=freeze.frozen,
                    train_frozen_bn=freeze.train_frozen_bn, head_paths=head_paths)

