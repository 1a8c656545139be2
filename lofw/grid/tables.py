"""The numbers of a grid report: a row per (task, optimizer), a row per meta-seed, and sentences.

Definitions. A *run* is one evaluation seed of one meta-training seed (the
baselines have one run per evaluation seed). "Loss at step s" is the mean raw
training loss over the last 5% of the steps up to s (:func:`loss_at`).
Diverged runs (lofw.evaluate's flag: NaN, inf, or a final loss above the task
normaliser's maximum) are counted and left out of the loss means; the
stability columns count them as unstable.

Columns (mean ± standard error over runs unless said otherwise):

- ``final meta-loss``: per meta-seed, the mean of the last 10% of meta-steps.
- ``mean loss over horizon``: the meta-objective, the mean raw training loss
  over the first ``H`` steps (``H`` = the meta-training horizon).
- ``vs tuned Adam``: ``mean loss over horizon`` divided by the reference
  baseline's (:data:`REFERENCE_BASELINES`: Adam tuned for the horizon when the
  grid evaluates ``adam@horizon``): below 1 is faster than tuned Adam inside
  the horizon.
- ``loss at horizon``, ``loss at S``: :func:`loss_at` at ``H`` and at each
  evaluation length ``S``.
- ``worst ratio``: the largest, over runs, of :mod:`lofw.evaluation.stability`'s
  ``worst_ratio`` (the EMA-smoothed loss after the horizon relative to its
  value at the horizon).
- ``steps above chance``: :mod:`lofw.evaluation.stability`'s count of steps after the
  horizon with a loss above the chance loss ``ln(classes)``.
- ``stable``: runs stable past the horizon by :mod:`lofw.evaluation.stability`'s
  definition (worst ratio at most 2, no non-finite loss), of all runs.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math

import numpy as np

from lofw.evaluation.stability import STABLE_RATIO, Stability, stability
from lofw.grid.results import (
    LEARNED,
    CellData,
    baseline_names,
    mean_se,
    meta_training_ended,
    stack_runs,
    variant_groups,
)
from lofw.meta.health import DEAD_STEPS

#: A variant whose loss at the horizon is above (1 - this) x its initial loss "did not train".
NO_PROGRESS = 0.10
#: Fraction of the last meta-steps averaged for the final meta-loss.
FINAL_META_FRACTION = 0.1
#: Window of "loss at step s": the mean raw loss over the last 5% of the steps before s.
WINDOW_FRACTION = 0.05
#: The baseline the learned optimizers are compared with inside the horizon, by preference.
REFERENCE_BASELINES = ("adam@horizon", "adam")
VS_ADAM = "vs tuned Adam"
WORST = "worst ratio"
ABOVE_CHANCE = "steps above chance"

NAN = (float("nan"), float("nan"))


@dataclasses.dataclass
class Row:
    task: str
    optimizer: str
    runs: int
    diverged: int
    values: dict[str, tuple[float, float]]   # column -> (mean, se); se NaN for a single number
    stability: Stability | None = None
    initial: float = float("nan")            # mean loss at step 1 of the finite runs

    @property
    def stable(self) -> int | None:
        return None if self.stability is None else int(self.stability.stable.sum())


def loss_at(curves: np.ndarray, step: int) -> np.ndarray:
    """Per run, the mean raw training loss over steps ``(s - w, s]`` with
    ``w = max(1, round(0.05 s))`` (a short trailing window: unlike the plots'
    EMA it does not lag behind a fast-falling curve)."""
    step = min(max(step, 1), curves.shape[1])
    w = max(1, int(round(WINDOW_FRACTION * step)))
    return curves[:, step - w:step].mean(axis=1)


def final_meta_losses(group: list[CellData]) -> list[float]:
    """Per meta-seed whose meta-training ended, the mean meta-loss over its
    last 10% of meta-steps (a running cell's curve is not final: left out)."""
    finals = []
    for c in group:
        if c.meta_loss.size and meta_training_ended(c):
            k = max(1, int(round(FINAL_META_FRACTION * c.meta_loss.size)))
            finals.append(float(np.mean(c.meta_loss[-k:])))
    return finals


def summary_rows(cells: list[CellData]) -> tuple[list[Row], list[str], list[str]]:
    """Table rows, the column names, and one plain sentence per learned variant."""
    horizons = sorted({h for c in cells for h in c.curves})
    columns = (["final meta-loss", "mean loss over horizon", VS_ADAM, "loss at horizon"]
               + [f"loss at {h}" for h in horizons] + [WORST, ABOVE_CHANCE])
    rows, sentences = [], []
    for task in dict.fromkeys(c.task for c in cells):
        task_cells = [c for c in cells if c.task == task]
        horizon = task_cells[0].horizon
        learned = [_row(task, variant, group, LEARNED, horizons, horizon, final_meta_losses(group))
                   for (t, variant), group in variant_groups(cells).items() if t == task]
        names = list(dict.fromkeys(n for h in horizons for n in baseline_names(task_cells, h)))
        base = [_row(task, name, task_cells, name, horizons, horizon, []) for name in names]
        task_rows = [r for r in learned + base if r is not None]
        reference = next((r for name in REFERENCE_BASELINES for r in base if r and r.optimizer == name), None)
        for r in task_rows:
            r.values[VS_ADAM] = (_ratio(r, reference), float("nan"))
        rows += task_rows
        longest = max(horizons) if horizons else horizon
        sentences += [_sentence(r, reference, horizon, longest) for r in learned if r is not None]
    return rows, columns, sentences


def _ratio(row: Row, reference: Row | None) -> float:
    if reference is None:
        return float("nan")
    return row.values.get("mean loss over horizon", NAN)[0] / reference.values["mean loss over horizon"][0]


def _row(task, label, group, name, horizons, horizon, finals) -> Row | None:
    values: dict[str, tuple[float, float]] = {"final meta-loss": mean_se(finals)[:2]}
    have = [h for h in horizons if stack_runs(group, h, name)[0].size]
    if not have:
        return Row(task, label, 0, 0, values) if name == LEARNED and finals else None
    curves, flags = stack_runs(group, max(have), name)
    ok = ~flags & np.isfinite(curves).all(axis=1)
    t = min(horizon, curves.shape[1]) if horizon else curves.shape[1]
    values["mean loss over horizon"] = mean_se(curves[ok, :t].mean(axis=1) if ok.any() else [])[:2]
    values["loss at horizon"] = mean_se(loss_at(curves[ok], t) if ok.any() else [])[:2]
    diverged = int((~ok).sum())
    for h in horizons:
        c_h, f_h = stack_runs(group, h, name)
        ok_h = ~f_h & np.isfinite(c_h).all(axis=1) if c_h.size else np.zeros(0, bool)
        diverged = max(diverged, int((~ok_h).sum()))
        values[f"loss at {h}"] = mean_se(loss_at(c_h[ok_h], h) if ok_h.any() else [])[:2]
    st = stability(curves, t, group[0].chance)
    values[WORST] = (float(np.max(st.worst_ratio)), float("nan"))
    values[ABOVE_CHANCE] = mean_se(st.steps_above_chance)[:2]
    initial = mean_se(curves[ok, 0])[0] if ok.any() else float("nan")
    return Row(task, label, int(curves.shape[0]), diverged, values, st, initial)


def _sentence(row: Row, reference: Row | None, horizon: int, longest: int) -> str:
    """Inside the horizon (vs tuned Adam) and past it (stable or not), in words and numbers."""
    where = f"{row.optimizer} on {row.task}"
    if row.stability is None:
        return f"- {where}: no finished evaluation to judge."
    start, end = row.values["loss at horizon"][0], row.values.get(f"loss at {longest}", NAN)[0]
    mean, ratio = row.values["mean loss over horizon"][0], row.values[VS_ADAM][0]
    if reference is None or not math.isfinite(ratio):
        inside = f"mean loss over the first {horizon} steps {mean:.4g} (no Adam baseline to compare)."
    else:
        word = "faster than" if ratio < 1 else "not faster than"
        inside = (f"{word} {reference.optimizer}: mean loss over the first {horizon} steps "
                  f"{mean:.4g} vs {reference.values['mean loss over horizon'][0]:.4g} ({ratio:.2f}x).")
    st, runs = row.stability, row.runs
    worst, above = float(np.max(st.worst_ratio)), row.values[ABOVE_CHANCE][0]
    counts = (f"{row.stable} of {runs} runs stable (smoothed loss at most {STABLE_RATIO:g}x its value at step "
              f"{horizon}, no non-finite loss); {above:.0f} steps above the chance loss per run on average")
    if row.diverged:
        past = (f"{row.diverged} of {runs} runs diverged within "
                f"{longest} steps (meta-trained on {horizon}); {counts}.")
    elif row.stable < runs:
        past = (f"the loss rose: its smoothed value reached "
                f"{worst:.3g}x its value at step {horizon} in the worst run; {counts}; loss {start:.4g} at step "
                f"{horizon}, {end:.4g} at step {longest}.")
    else:
        past = (f"stayed stable past the horizon: loss {start:.4g} at step {horizon}, {end:.4g} at step "
                f"{longest}, worst smoothed ratio {worst:.3g}, no run diverged ({runs} runs).")
        if math.isfinite(row.initial) and start > (1 - NO_PROGRESS) * row.initial:
            past += f" But it did not train: the loss started at {row.initial:.4g} and was still {start:.4g} at the horizon."
    if row.diverged or row.stable < runs:
        return f"- **{where}: did NOT stay stable past the horizon**: {past} Inside the horizon: {inside}"
    return f"- {where}: {past} Inside the horizon: {inside}"


def seed_rows(cells: list[CellData], rows: list[Row]) -> list[dict[str, str]]:
    """One row per learned variant and meta-training seed: the stability of each meta-seed."""
    refs = {(r.task, r.optimizer): r for r in rows}
    out = []
    for (task, variant), group in variant_groups(cells).items():
        reference = next((refs[(task, n)] for n in REFERENCE_BASELINES if (task, n) in refs), None)
        for c in sorted(group, key=lambda c: c.seed):
            row = _row(task, variant, [c], LEARNED, sorted(c.curves), c.horizon, final_meta_losses([c]))
            if row is None or row.stability is None:
                continue
            longest = max(c.curves)
            out.append({
                "task": task, "optimizer": variant, "meta-seed": str(c.seed), "runs": str(row.runs),
                "final meta-loss": _num(row.values["final meta-loss"][0]),
                "mean loss over horizon": _num(row.values["mean loss over horizon"][0]),
                VS_ADAM: _num(_ratio(row, reference)),
                f"loss at {longest}": _num(row.values[f"loss at {longest}"][0]),
                WORST: _num(row.values[WORST][0]),
                "max " + ABOVE_CHANCE: _num(float(np.max(row.stability.steps_above_chance))),
                "non-finite runs": str(int((row.stability.nonfinite > 0).sum())),
                "stable": f"{row.stable}/{row.runs}",
                "meta-training": f"NOT LEARNING ({c.dead_steps} dead steps)" if c.dead_steps >= DEAD_STEPS else "ok",
            })
    return out


def _num(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else ("inf" if x == math.inf else "–")


def _fmt(mean: float, se: float) -> str:
    if not math.isfinite(mean):
        return "inf" if mean == math.inf else "–"
    return f"{mean:.4g}" if not math.isfinite(se) else f"{mean:.4g} ± {se:.2g}"


def markdown_table(rows: list[Row], columns: list[str]) -> str:
    head = ["task", "optimizer", "runs", "diverged"] + columns + ["stable"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.task, r.optimizer, str(r.runs), f"{r.diverged}/{r.runs}"]
        cells += [_fmt(*r.values.get(c, NAN)) for c in columns]
        cells.append("–" if r.stable is None else f"{r.stable}/{r.runs}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_records(records: list[dict[str, str]]) -> str:
    if not records:
        return "- no evaluation yet."
    head = list(records[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r[k] for k in head) + " |" for r in records]
    return "\n".join(lines)


def csv_table(rows: list[Row], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    slug = [c.replace(" ", "_").replace("-", "_") for c in columns]
    writer.writerow(["task", "optimizer", "runs", "diverged"] + [f"{s}_{k}" for s in slug for k in ("mean", "se")]
                    + ["stable_runs", "nonfinite_runs"])
    for r in rows:
        vals = []
        for c in columns:
            m, s = r.values.get(c, NAN)
            vals += [f"{m:.6g}", f"{s:.6g}"]
        nonfinite = "" if r.stability is None else int((r.stability.nonfinite > 0).sum())
        writer.writerow([r.task, r.optimizer, r.runs, r.diverged] + vals + ["" if r.stable is None else r.stable, nonfinite])
    return buf.getvalue()
