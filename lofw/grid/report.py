"""The report of a grid run: Figure-3-style plots and a summary table.

Reads only files (``grid.json`` and the cell folders, see
:mod:`lofw.grid.files`), so it works on a finished, partial or copied run.
Writes into ``OUT/report/``:

- ``meta_training.png``: meta-loss against meta-step, one line per variant
  (the grid cell without its seed), EMA-smoothed (0.98, less for runs of
  under 500 meta-steps: :func:`meta_ema`), mean over seeds with a band of
  one standard error (the seed spread); one panel per task.
- ``inner_training_h<H>.png``: training loss of fresh task instances over
  the evaluation horizon ``H`` for every variant and baseline, each run
  smoothed by an EMA with coefficient 0.98 (paper Appendix B.2), mean over
  runs with a band of one standard error, log scale, and a dashed black
  line at the meta-training horizon (paper Figure 3, lower row).
- ``members.png`` (a grid with mixture cells): each member's meta-loss
  during meta-training (:mod:`lofw.grid.members_plot`).
- ``summary.md`` and ``summary.csv``: per task and optimizer, the numbers
  of :mod:`lofw.grid.tables` (the meta-objective against tuned Adam, losses
  at the horizon and at each evaluation length, and the stability columns of
  :mod:`lofw.evaluation.stability`); ``summary.md`` adds a row per meta-training seed,
  one plain sentence per variant (faster than tuned Adam inside the
  horizon or not, stable past it or not, in numbers) and, for a grid with
  a ``hyperparam`` control, which meta-trainings collapsed
  (:mod:`lofw.grid.collapse`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lofw.evaluation.plots import band, label_loss_axes, pyplot, save
from lofw.evaluation.stability import EMA, ema  # noqa: F401  (re-exported)
from lofw.grid.collapse import collapse_section
from lofw.grid.files import FINISHED, report_dir
from lofw.grid.members_plot import plot_members
from lofw.grid.ood_report import ood_section
from lofw.grid.results import (  # noqa: F401
    LEARNED,
    CellData,
    baseline_names,
    load_cells,
    mean_se,
    meta_ema,
    stack_runs,
    variant_groups,
)
from lofw.grid.tables import csv_table, markdown_records, markdown_table, seed_rows, summary_rows
from lofw.meta.health import DEAD_STEPS


def plot_meta_training(cells: list[CellData], path: Path) -> None:
    plt = pyplot()
    tasks = list(dict.fromkeys(c.task for c in cells))
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (t, variant), group in variant_groups(cells).items():
            if t != task:
                continue
            series = [ema(c.meta_loss, meta_ema(c.meta_loss.size)) for c in group if c.meta_loss.size]
            if not series:
                continue
            n = min(s.size for s in series)
            steps = next(c.meta_steps for c in group if c.meta_steps.size)[:n]
            band(ax, steps, np.stack([s[:n] for s in series]),
                  f"{variant} ({len(series)} seed{'s' if len(series) > 1 else ''})")
        ax.set_title(f"meta-training: {task}")
        ax.set_xlabel("meta-step")
        n = max((c.meta_loss.size for c in cells if c.task == task), default=0)
        ax.set_ylabel(f"meta-loss (EMA {meta_ema(n):.3g})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save(fig, path)


#: Line styles and gray levels of the baselines (learned optimizers are solid and coloured).
BASELINE_STYLES = (":", "-.", "--")
BASELINE_GRAYS = ("0.25", "0.55", "0.4")


def plot_inner_training(cells: list[CellData], h: int, path: Path) -> None:
    plt = pyplot()
    tasks = list(dict.fromkeys(c.task for c in cells if h in c.curves))
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(6 * max(1, len(tasks)), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        group_all = [c for c in cells if c.task == task]
        entries = [(variant, g, LEARNED, "-", None) for (t, variant), g in variant_groups(cells).items() if t == task]
        entries += [(name, group_all, name, BASELINE_STYLES[i % len(BASELINE_STYLES)], BASELINE_GRAYS[i % len(BASELINE_GRAYS)])
                    for i, name in enumerate(baseline_names(group_all, h))]
        top, bottom = 0.0, float("inf")
        for label, group, name, style, color in entries:
            curves, flags = stack_runs(group, h, name)
            if not curves.size:
                continue
            smoothed = ema(curves)
            x = np.arange(1, smoothed.shape[1] + 1)
            n_div = int((flags | ~np.isfinite(smoothed).all(axis=1)).sum())
            tag = f" ({n_div}/{len(flags)} diverged)" if n_div else ""
            band(ax, x, smoothed, f"{label}{tag}", color=color, linestyle=style)
            finite = smoothed[np.isfinite(smoothed)]
            if finite.size:
                top = max(top, float(np.nanmax(smoothed[:, 0][np.isfinite(smoothed[:, 0])], initial=0.0)))
                bottom = min(bottom, float(finite[finite > 0].min(initial=np.inf)))
        horizon = group_all[0].horizon
        if horizon:
            ax.axvline(horizon, color="black", linestyle="--", linewidth=1.0, label=f"meta-training horizon ({horizon})")
        ax.set_yscale("log")
        if top > 0 and math.isfinite(bottom):
            ax.set_ylim(bottom * 0.8, top * 2.0)
        ax.set_title(f"inner training: {task}, {h} steps")
        label_loss_axes(ax)
        ax.legend(fontsize=7, loc="upper right")
    save(fig, path)


def write_report(out: str | Path) -> Path:
    """Write the plots and the summary table of the grid run in ``out``; return the report folder."""
    out = Path(out)
    grid, cells = load_cells(out)
    folder = report_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    plot_meta_training(cells, folder / "meta_training.png")
    members = plot_members(cells, folder / "members.png")
    horizons = sorted({h for c in cells for h in c.curves})
    for h in horizons:
        plot_inner_training(cells, h, folder / f"inner_training_h{h}.png")
    rows, columns, sentences = summary_rows(cells)
    (folder / "summary.csv").write_text(csv_table(rows, columns))
    statuses: dict[str, int] = {}
    for c in cells:
        statuses[c.status] = statuses.get(c.status, 0) + 1
    unfinished = sum(n for s, n in statuses.items() if s not in FINISHED)
    md = [f"# Grid `{grid.get('name')}`", "",
          f"Cells: {len(cells)} (" + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + ")."]
    if unfinished:
        md.append(f"\n**{unfinished} cell(s) not finished: the numbers below cover the finished ones.**")
    dead = [c.id for c in cells if c.dead_steps >= DEAD_STEPS]
    if dead:
        md.append(f"\n**{len(dead)} cell(s) NOT LEARNING** (their meta-training ended with at least {DEAD_STEPS} "
                  "meta-steps of zero meta-gradient or every particle diverged; lofw.meta.health): " + ", ".join(dead) + ".")
    md += ["", "## Stability past the meta-training horizon", ""]
    md += sentences or ["- no evaluation yet."]
    collapsed = collapse_section(grid.get("grid", {}), cells)
    md += ["", *collapsed] if collapsed else []
    md += ["", "## Summary", "",
           "Mean ± standard error over runs (meta-training seeds x evaluation seeds; the final meta-loss "
           "over meta-training seeds). \"loss at S\" is the mean training loss over the last 5% of the steps "
           "up to step S; \"loss at horizon\" is at the meta-training horizon; \"mean loss over horizon\" is "
           "the meta-objective (mean over the first horizon steps); \"vs tuned Adam\" divides it by that of "
           "Adam tuned for the horizon (`adam@horizon`; plain `adam` is tuned for the whole evaluation); "
           "diverged runs are counted and left out of the loss means. Stability (lofw.evaluation.stability): \"worst "
           "ratio\" is the largest, over runs, of the EMA(0.98)-smoothed loss after the horizon divided by its "
           "value at the horizon; \"steps above chance\" counts steps after the horizon with a loss above "
           "ln(classes) (or non-finite); a run is stable when its ratio is at most 2 and no loss is non-finite. "
           "Plots: EMA 0.98.", "",
           markdown_table(rows, columns), "", "## Per meta-training seed", "",
           markdown_records(seed_rows(cells, rows)), "", "## Plots", "", "![meta-training](meta_training.png)", ""]
    md += ["![mixture members](members.png)", ""] if members else []
    md += [f"![inner training, {h} steps](inner_training_h{h}.png)" for h in horizons]
    md += ood_section(out, folder)  # a grid's eval.tasks (out of distribution)
    (folder / "summary.md").write_text("\n".join(md) + "\n")
    return folder
