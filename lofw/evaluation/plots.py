"""Matplotlib pieces the reports share: the backend, mean ± s.e. bands, loss axes, saving.

Used by the grid report (lofw.grid.report) and the generalisation report
(lofw.evaluation.generalize_report); matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lofw.evaluation.stability import EMA


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib  # imported here: the backend must be chosen before pyplot is first imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def band(ax, x, runs: np.ndarray, label: str, color=None, linestyle: str = "-", floor: float | None = None):
    """The mean of ``runs`` (one row per run) with a ± standard-error band; returns the line.

    ``floor`` clips the band's lower edge (a log axis cannot show values <= 0).
    """
    mean = runs.mean(axis=0)
    line, = ax.plot(x, mean, label=label, color=color, linestyle=linestyle, linewidth=1.4)
    if runs.shape[0] > 1:
        se = runs.std(axis=0, ddof=1) / math.sqrt(runs.shape[0])
        lower = mean - se if floor is None else np.maximum(mean - se, floor)
        ax.fill_between(x, lower, mean + se, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def label_loss_axes(ax) -> None:
    """Axis labels and grid of an inner-training loss panel."""
    ax.set_xlabel("inner step")
    ax.set_ylabel(f"training loss (EMA {EMA})")
    ax.grid(alpha=0.3, which="both")


def save(fig, path: Path) -> None:
    """Lay out, write (110 dpi) and close ``fig``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
