"""Collapsed meta-trainings: a learned optimizer whose meta-training ended above its control's.

The paper's control for a learned optimizer is ``hyperparam`` (Figure 3):
the same features and nominal term, a learned schedule of hyperparameters,
no blackbox. A meta-training that ends with a higher meta-loss than the
control trained with the same meta-seed and the same other settings has
learned less than a schedule: it *collapsed* (issue 21 counts how often
STAR's does, per outer learning rate); so has one whose final meta-loss is
not finite. "Final meta-loss" is the summary
table's: the mean over the last 10% of meta-steps
(:func:`lofw.grid.tables.final_meta_losses`).

A cell's control is the ``hyperparam`` cell whose settings equal the cell's
except for the recipe and the keys varied together with it (a labelled zip
group such as ``{label: [...], recipe: [...], outer.weight_decay: [...]}``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lofw.grid.expand import LABEL_KEY, canonical_json
from lofw.grid.files import FINISHED
from lofw.grid.results import CellData
from lofw.grid.tables import final_meta_losses

#: The recipe of the control variant.
CONTROL = "hyperparam"


def _pairing_key(cell: CellData) -> str:
    """The cell's task and settings less its recipe and everything varied with it."""
    tied = {"recipe"} | {path for _, paths in cell.overrides.get(LABEL_KEY, []) if "recipe" in paths for path in paths}
    rest = {k: v for k, v in cell.overrides.items() if k not in tied and k != LABEL_KEY}
    return canonical_json([cell.task, rest])


def collapses(cells: list[CellData]) -> dict[str, list[tuple[CellData, float, float]]]:
    """Variant -> ``(cell, final meta-loss, its control's)`` for every cell with a control.

    Only finished cells count (a running cell's meta-loss is not its final
    one); empty when the grid has no finished ``hyperparam`` cell.
    """
    done = [c for c in cells if c.status in FINISHED and c.meta_loss.size]
    controls = {_pairing_key(c): final_meta_losses([c])[0] for c in done if c.recipe == CONTROL}
    out: dict[str, list[tuple[CellData, float, float]]] = {}
    for c in done:
        key = _pairing_key(c)
        if c.recipe == CONTROL or key not in controls:
            continue
        out.setdefault(c.variant, []).append((c, final_meta_losses([c])[0], controls[key]))
    return out


def collapsed(final: float, control: float) -> bool:
    """Above the control's final meta-loss, or not finite (a diverged meta-training)."""
    return not np.isfinite(final) or final > control


def collapse_section(cells: list[CellData]) -> list[str]:
    """The report's markdown section (no lines when the grid has no control)."""
    pairs = collapses(cells)
    if not pairs:
        return []
    lines = ["## Collapsed meta-trainings", "",
             f"A meta-training collapsed when its final meta-loss (mean of the last 10% of meta-steps) is above "
             f"that of the `{CONTROL}` cell with the same meta-seed and the same other settings (lofw.grid.collapse).",
             "", "| variant | collapsed | final meta-loss per meta-seed | control's |", "|---|---|---|---|"]
    for variant, group in pairs.items():
        group = sorted(group, key=lambda p: p[0].seed)
        n = sum(collapsed(final, control) for _, final, control in group)
        mark = "**" if n else ""
        lines.append(f"| {variant} | {mark}{n}/{len(group)}{mark} | "
                     + ", ".join(f"{_g(final)} (seed {c.seed})" for c, final, _ in group) + " | "
                     + ", ".join(_g(control) for _, _, control in group) + " |")
    return lines


def _g(x: Any) -> str:
    return f"{x:.4g}" if np.isfinite(x) else "nan"
