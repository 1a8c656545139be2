"""``members.png`` of a grid report: each mixture member's meta-loss during meta-training.

A mixture cell's ``metrics.jsonl`` carries ``meta_loss.<member>`` on the
meta-steps that trained that member (``lofw/meta/mixture.py``). One panel
per mixture cell, one line per member: the member's meta-loss (normalised
as the mixture normalises it) against the meta-step, EMA-smoothed over the
meta-steps that trained it (with ``subset: S`` a member is trained on about
``S / K`` of the meta-steps), log scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lofw.evaluation.plots import pyplot, save
from lofw.evaluation.stability import ema
from lofw.grid.results import CellData, meta_ema


def plot_members(cells: list[CellData], path: Path) -> bool:
    """Write the plot when some cell is a mixture; return whether it did."""
    mixtures = [c for c in cells if c.members]
    if not mixtures:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(mixtures), figsize=(6 * len(mixtures), 4), squeeze=False)
    for ax, cell in zip(axes[0], mixtures):
        for name, losses in cell.members.items():
            trained = np.isfinite(losses)
            if trained.sum() < 2:
                continue
            ax.plot(cell.meta_steps[trained], ema(losses[trained], meta_ema(int(trained.sum()))), label=name, linewidth=1.0)
        ax.set_yscale("log")
        ax.set_title(f"members: {cell.variant}, seed {cell.seed}")
        ax.set_xlabel("meta-step")
        ax.set_ylabel("member meta-loss (normalised, EMA)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save(fig, path)
    return True
