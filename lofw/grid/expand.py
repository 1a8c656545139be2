"""Pure, deterministic expansion of a grid into cells, and stable cell ids.

Cells = (cartesian product of ``axes`` x each ``zip`` group) minus ``exclude``,
each repeated for every seed in ``seeds``. Axes vary in the order written,
the last fastest; seeds are the outermost loop, so a run that stops early
has every variant for the first seeds.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
from collections.abc import Mapping
from typing import Any

from lofw.grid.config import GridConfig

#: The key of ``base`` that ``seeds:`` sets.
SEED_KEY = "seed"
#: A zip group's optional list of short names, one per entry (not a config path).
LABEL_KEY = "label"


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """One cell before validation.

    Attributes:
        index: position in the expansion order.
        overrides: dotted path -> value for every axis / zip key, then ``seed``.
        config: ``base`` with the overrides applied (a plain mapping).
    """

    index: int
    overrides: dict[str, Any]
    config: dict[str, Any]

    @property
    def variant(self) -> dict[str, Any]:
        """The overrides without the seed: cells that differ only by seed share it."""
        return {k: v for k, v in self.overrides.items() if k != SEED_KEY}

    @property
    def settings(self) -> dict[str, Any]:
        """The overrides that are config paths (without the zip groups' labels)."""
        return {k: v for k, v in self.overrides.items() if k != LABEL_KEY}

    @property
    def variant_label(self) -> str:
        return variant_label(self.overrides)


def axis_groups(grid: GridConfig) -> list[list[dict[str, Any]]]:
    """Each independent axis as a list of assignments: one per axis, one per zip group."""
    groups = [[{path: value} for value in values] for path, values in grid.axes.items()]
    for group in grid.zip:
        paths = [p for p in group if p != LABEL_KEY]
        length = len(group[paths[0]]) if paths else 0
        assignments = [{p: group[p][i] for p in paths} for i in range(length)]
        if LABEL_KEY in group:
            for i, assignment in enumerate(assignments):
                assignment[LABEL_KEY] = [[str(group[LABEL_KEY][i]), paths]]
        groups.append(assignments)
    return groups


def is_excluded(overrides: Mapping[str, Any], exclude: list[dict[str, Any]]) -> bool:
    """True when every key of some ``exclude`` entry equals the cell's value."""
    return any(all(k in overrides and overrides[k] == v for k, v in entry.items()) for entry in exclude)


def set_path(config: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``config`` with the dotted ``path`` set to ``value``.

    Missing intermediate mappings are created (the config model fills the
    other keys with their defaults).

    Raises:
        ValueError: an intermediate value exists and is not a mapping.
    """
    out = copy.deepcopy(dict(config))
    node = out
    parts = path.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ValueError(f"{'.'.join(parts[: i + 1])} is {child!r}, not a mapping")
        node = child
    node[parts[-1]] = copy.deepcopy(value)
    return out


def expand_grid(grid: GridConfig) -> list[CellSpec]:
    """Every cell of ``grid``, in a deterministic order (see module docstring)."""
    variants = []
    for combo in itertools.product(*axis_groups(grid)):
        overrides: dict[str, Any] = {}
        for assignment in combo:
            labels = overrides.get(LABEL_KEY, []) + assignment.get(LABEL_KEY, [])
            overrides.update(assignment)
            if labels:
                overrides[LABEL_KEY] = labels
        if not is_excluded(overrides, grid.exclude):
            variants.append(overrides)
    cells = []
    for seed in grid.seeds:
        for overrides in variants:
            full = {**overrides, SEED_KEY: seed}
            config = dict(grid.base)
            for path, value in full.items():
                if path != LABEL_KEY:
                    config = set_path(config, path, value)
            cells.append(CellSpec(index=len(cells), overrides=full, config=config))
    return cells


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configs give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def cell_id(resolved: Any) -> str:
    """Stable id of a fully resolved cell: the first 12 hex digits of the
    SHA-256 of its canonical JSON. The same cell is the same folder across
    reruns and machines; any change of config gives a new id."""
    return hashlib.sha256(canonical_json(resolved).encode()).hexdigest()[:12]


def variant_label(variant: Mapping[str, Any]) -> str:
    """A short human label such as ``star, outer.weight_decay=0.1`` (a recipe
    is shown by its name alone; the paths of a labelled zip group by its label)."""
    named = variant.get(LABEL_KEY, [])
    hidden = {p for _, paths in named for p in paths} | {LABEL_KEY}
    parts = [label for label, _ in named]
    parts += [_short(v) if k == "recipe" else f"{k}={_short(v)}" for k, v in variant.items() if k not in hidden]
    return ", ".join(parts) if parts else "base"


def _short(value: Any) -> str:
    """A value in a few characters: a name, ``star+blackbox_scale`` for an
    inline recipe extending ``star``, ``pes(...)`` for a component spec."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and "name" in value:
        return str(value["name"]) + "(...)"
    if isinstance(value, Mapping) and "extends" in value:
        return "+".join([str(value["extends"]), *(str(k) for k in value if k != "extends")])
    return canonical_json(value) if isinstance(value, (dict, list)) else repr(value)
