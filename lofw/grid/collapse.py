"""Collapsed meta-trainings: a learned optimizer whose meta-training ended above its control's.

The paper's control for a learned optimizer is ``hyperparam`` (Figure 3):
the same features and nominal term, a learned schedule of hyperparameters,
no blackbox. A meta-training that ends with a higher meta-loss than the
control trained with the same meta-seed and the same other settings has
learned less than a schedule: it *collapsed* (issue 21 counts how often
STAR's does, per outer learning rate); so has one whose final meta-loss is
not finite. "Final meta-loss" is the summary table's: the mean over the
last 10% of meta-steps (:func:`lofw.grid.tables.final_meta_losses`).

A cell's control is the ``hyperparam`` cell, its meta-training ended, whose settings equal
the cell's except for the recipe and the keys zipped with it (a zip group
such as ``{recipe: [star, hyperparam], outer.weight_decay: [0.5, 0.1]}``,
labelled or not). A cell with no such control, or with several, or whose
control's final meta-loss is not finite, is not compared (the section says
how many).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lofw.grid.expand import LABEL_KEY, canonical_json
from lofw.grid.results import CellData, meta_training_ended
from lofw.grid.tables import final_meta_losses

#: The recipe of the control variant.
CONTROL = "hyperparam"


def tied_paths(grid: dict[str, Any]) -> set[str]:
    """``recipe`` and every path zipped with it in the grid file (``grid.json``'s ``grid``)."""
    tied = {"recipe"}
    for group in grid.get("zip", []) or []:
        if "recipe" in group:
            tied |= {path for path in group if path != LABEL_KEY}
    return tied


def _pairing_key(cell: CellData, tied: set[str]) -> str:
    """The cell's task and settings less its recipe and everything zipped with it."""
    rest = {k: v for k, v in cell.overrides.items() if k not in tied and k != LABEL_KEY}
    return canonical_json([cell.task, rest])


def control_pairs(cells: list[CellData], tied: set[str]) -> tuple[dict[str, list[tuple[CellData, float, float]]], int]:
    """``(variant -> [(cell, final meta-loss, its control's)], cells not compared)``.

    Only cells whose meta-training ended count (a running cell's meta-loss is not its final one).
    """
    done = [c for c in cells if meta_training_ended(c) and c.meta_loss.size]
    controls: dict[str, list[float]] = {}
    for c in done:
        if c.recipe == CONTROL:
            controls.setdefault(_pairing_key(c, tied), []).append(final_meta_losses([c])[0])
    pairs: dict[str, list[tuple[CellData, float, float]]] = {}
    skipped = 0
    for c in done:
        if c.recipe == CONTROL:
            continue
        found = controls.get(_pairing_key(c, tied), [])
        if len(found) != 1 or not np.isfinite(found[0]):
            skipped += 1
            continue
        pairs.setdefault(c.variant, []).append((c, final_meta_losses([c])[0], found[0]))
    return pairs, skipped


def collapsed(final: float, control: float) -> bool:
    """Above the control's final meta-loss, or not finite (a diverged meta-training)."""
    return not np.isfinite(final) or final > control


def collapse_section(grid: dict[str, Any], cells: list[CellData]) -> list[str]:
    """The report's markdown section (no lines when no cell has a control)."""
    pairs, skipped = control_pairs(cells, tied_paths(grid))
    if not pairs:
        return []
    lines = ["## Collapsed meta-trainings", "",
             f"A meta-training collapsed when its final meta-loss (mean of the last 10% of meta-steps) is above "
             f"that of the `{CONTROL}` cell with the same meta-seed and the same other settings, or is not "
             "finite (lofw.grid.collapse).",
             "", "| variant | collapsed | final meta-loss per meta-seed | control's |", "|---|---|---|---|"]
    for variant, group in pairs.items():
        group = sorted(group, key=lambda p: p[0].seed)
        n = sum(collapsed(final, control) for _, final, control in group)
        mark = "**" if n else ""
        lines.append(f"| {variant} | {mark}{n}/{len(group)}{mark} | "
                     + ", ".join(f"{_g(final)} (seed {c.seed})" for c, final, _ in group) + " | "
                     + ", ".join(_g(control) for _, _, control in group) + " |")
    if skipped:
        lines += ["", f"{skipped} finished cell(s) not compared: no single `{CONTROL}` cell with their settings "
                  "and a finite final meta-loss."]
    return lines


def _g(x: Any) -> str:
    return f"{x:.4g}" if np.isfinite(x) else "nan"
