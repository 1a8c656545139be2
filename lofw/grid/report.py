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
- ``summary.md`` and ``summary.csv``: per task and optimizer, ``mean ± s.e.``
  over runs of the final meta-loss, the mean training loss over the
  meta-training horizon, the loss at the meta-training horizon and at each
  evaluation horizon, and the count of diverged runs; then one plain
  sentence per variant saying whether it stayed stable past the horizon.

Definitions. A *run* is one evaluation seed of one meta-training seed (the
baselines have one run per evaluation seed). "Loss at step s" is the mean raw
training loss over the last 5% of the steps up to s (:func:`loss_at`).
Diverged runs (lofw.evaluate's flag: NaN, inf, or a loss above the task
normaliser's maximum) are counted, and left out of the means. A variant *stayed stable past the horizon* when no run diverged
and its loss at the longest evaluation horizon is at most 10% above its loss
at the meta-training horizon; the sentence adds that it "did not train" when
its loss at the horizon is still above 90% of its loss at step 1.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from lofw.errors import ConfigError
from lofw.stability import EMA, ema
from lofw.grid.files import FINISHED, cell_dir, eval_dir, read_json, read_jsonl, report_dir, run_dir

#: Relative rise of the loss past the horizon that counts as not stable.
STABLE_TOLERANCE = 0.10
#: A variant whose loss at the horizon is above (1 - this) x its initial loss "did not train".
NO_PROGRESS = 0.10
#: Fraction of the last meta-steps averaged for the final meta-loss.
FINAL_META_FRACTION = 0.1
LEARNED = "learned"


def meta_ema(n_steps: int) -> float:
    """EMA coefficient of a meta-training curve of ``n_steps`` points: the
    paper's 0.98, lowered to ``1 - 10 / n`` for short runs so the curve is not
    mostly lag (at least ten time constants fit in the run)."""
    return min(EMA, max(0.0, 1.0 - 10.0 / max(n_steps, 1)))


def mean_se(values: list[float] | np.ndarray) -> tuple[float, float, int]:
    """Mean, standard error (sample std / sqrt(n); 0 for one value) and count of the finite values."""
    v = np.asarray([x for x in np.asarray(values, dtype=np.float64).ravel() if math.isfinite(x)])
    if v.size == 0:
        return float("nan"), float("nan"), 0
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return float(v.mean()), se, int(v.size)


@dataclasses.dataclass
class CellData:
    id: str
    variant: str
    task: str
    seed: int
    horizon: int
    status: str
    meta_steps: np.ndarray
    meta_loss: np.ndarray
    curves: dict[int, dict[str, np.ndarray]]          # eval horizon -> optimizer -> [seeds, steps]
    diverged: dict[int, dict[str, np.ndarray]]        # eval horizon -> optimizer -> [seeds] bool


def _task_label(task: Any) -> str:
    if isinstance(task, str):
        return task
    if isinstance(task, dict):
        return str(task.get("name", "task"))
    return "task"


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def load_cells(out: Path) -> tuple[dict[str, Any], list[CellData]]:
    """Read ``grid.json`` and every cell folder under ``out``."""
    out = Path(out)
    grid = read_json(out / "grid.json")
    if not isinstance(grid, dict):
        raise ConfigError(f"{out}: not a grid run folder (no readable grid.json); run `lofw ablate` first")
    cells = []
    for entry in grid.get("cells", []):
        cid = entry["id"]
        folder = cell_dir(out, cid)
        info = read_json(folder / "cell.json") or {}
        resolved = info.get("resolved", {})
        meta = resolved.get("meta_train", {})
        status = (read_json(folder / "cell_status.json") or {}).get("status", "pending")
        rows = read_jsonl(run_dir(out, cid) / "metrics.jsonl")
        curves: dict[int, dict[str, np.ndarray]] = {}
        diverged: dict[int, dict[str, np.ndarray]] = {}
        for h in resolved.get("eval", {}).get("horizons", []):
            folder_h = eval_dir(out, cid, int(h))
            summary = read_json(folder_h / "summary.json")
            if not isinstance(summary, dict) or not (folder_h / "curves.npz").is_file():
                continue
            with np.load(folder_h / "curves.npz") as npz:
                curves[int(h)] = {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files}
            diverged[int(h)] = {
                name: np.asarray(s.get("diverged", []), dtype=bool) for name, s in summary.get("optimizers", {}).items()
            }
        cells.append(CellData(
            id=cid, variant=entry.get("variant", "base"), task=_task_label(meta.get("task")),
            seed=int(entry.get("seed", meta.get("seed", 0))), horizon=int(meta.get("horizon", 0)), status=status,
            meta_steps=np.asarray([_float(r.get("step")) for r in rows]),
            meta_loss=np.asarray([_float(r.get("meta_loss")) for r in rows]),
            curves=curves, diverged=diverged,
        ))
    return grid, cells


def _runs(cells: list[CellData], h: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Stack the ``[runs, steps]`` curves and diverged flags of optimizer ``name`` at horizon ``h``."""
    curves, flags = [], []
    for c in cells:
        if h in c.curves and name in c.curves[h]:
            arr = np.atleast_2d(c.curves[h][name])
            curves.append(arr)
            flag = c.diverged.get(h, {}).get(name)
            flags.append(flag if flag is not None and flag.size == arr.shape[0] else ~np.isfinite(arr).all(axis=1))
    if not curves:
        return np.zeros((0, 0)), np.zeros((0,), bool)
    n = min(a.shape[1] for a in curves)
    return np.concatenate([a[:, :n] for a in curves]), np.concatenate(flags)


def _groups(cells: list[CellData]) -> dict[tuple[str, str], list[CellData]]:
    groups: dict[tuple[str, str], list[CellData]] = {}
    for c in cells:
        groups.setdefault((c.task, c.variant), []).append(c)
    return groups


def _baselines(cells: list[CellData], h: int) -> list[str]:
    names = []
    for c in cells:
        for name in c.curves.get(h, {}):
            if name != LEARNED and name not in names:
                names.append(name)
    return names


@dataclasses.dataclass
class Row:
    task: str
    optimizer: str
    runs: int
    diverged: int
    values: dict[str, tuple[float, float]]   # column -> (mean, se)


#: Window of "loss at step s": the mean raw loss over the last 5% of the steps before s.
WINDOW_FRACTION = 0.05


def loss_at(curves: np.ndarray, step: int) -> np.ndarray:
    """Per run, the mean raw training loss over steps ``(s - w, s]`` with
    ``w = max(1, round(0.05 s))`` (a short trailing window: unlike the plots'
    EMA it does not lag behind a fast-falling curve)."""
    step = min(max(step, 1), curves.shape[1])
    w = max(1, int(round(WINDOW_FRACTION * step)))
    return curves[:, step - w:step].mean(axis=1)


def summary_rows(cells: list[CellData]) -> tuple[list[Row], list[str], list[str]]:
    """Table rows, the column names, and the stability sentences."""
    horizons = sorted({h for c in cells for h in c.curves})
    columns = ["final meta-loss", "mean loss over horizon", "loss at horizon"] + [f"loss at {h}" for h in horizons]
    rows, sentences = [], []
    for (task, variant), group in _groups(cells).items():
        finals = []
        for c in group:
            if c.meta_loss.size:
                k = max(1, int(round(FINAL_META_FRACTION * c.meta_loss.size)))
                finals.append(float(np.mean(c.meta_loss[-k:])))
        horizon = group[0].horizon
        rows.extend(_optimizer_rows(task, variant, group, LEARNED, horizons, horizon, finals, sentences))
    # baselines: once per task
    for task in dict.fromkeys(c.task for c in cells):
        group = [c for c in cells if c.task == task]
        names = list(dict.fromkeys(n for h in horizons for n in _baselines(group, h)))
        for name in names:
            rows.extend(_optimizer_rows(task, name, group, name, horizons, group[0].horizon, [], None))
    return rows, columns, sentences


def _optimizer_rows(task, label, group, name, horizons, horizon, finals, sentences) -> list[Row]:
    values: dict[str, tuple[float, float]] = {}
    m, s, _ = mean_se(finals)
    values["final meta-loss"] = (m, s)
    runs = diverged = 0
    have = [h for h in horizons if _runs(group, h, name)[0].size]
    if not have:
        if name == LEARNED and finals:
            return [Row(task, label, 0, 0, values)]
        return []
    longest = max(have)
    curves, flags = _runs(group, longest, name)
    smoothed = ema(curves)
    ok = ~flags & np.isfinite(smoothed).all(axis=1)
    runs, diverged = int(curves.shape[0]), int((~ok).sum())
    t = min(horizon, curves.shape[1]) if horizon else curves.shape[1]
    values["mean loss over horizon"] = mean_se(curves[ok, :t].mean(axis=1) if ok.any() else [])[:2]
    at_horizon = loss_at(curves[ok], t) if ok.any() else np.zeros(0)
    values["loss at horizon"] = mean_se(at_horizon)[:2]
    for h in horizons:
        c_h, f_h = _runs(group, h, name)
        if not c_h.size:
            values[f"loss at {h}"] = (float("nan"), float("nan"))
            continue
        sm = ema(c_h)
        ok_h = ~f_h & np.isfinite(sm).all(axis=1)
        diverged = max(diverged, int((~ok_h).sum()))
        values[f"loss at {h}"] = mean_se(loss_at(c_h[ok_h], h) if ok_h.any() else [])[:2]
    if sentences is not None:
        start, end = values["loss at horizon"][0], values[f"loss at {longest}"][0]
        where = f"{label} on {task}"
        if diverged:
            sentences.append(f"- **{where}: did NOT stay stable past the horizon**: {diverged} of {runs} "
                             f"runs diverged within {longest} steps (meta-trained on {horizon}).")
        elif not (math.isfinite(start) and math.isfinite(end)):
            sentences.append(f"- {where}: no finished evaluation to judge.")
        elif end > start * (1 + STABLE_TOLERANCE):
            sentences.append(f"- **{where}: did NOT stay stable past the horizon**: the loss rose from "
                             f"{start:.4g} at step {horizon} to {end:.4g} at step {longest}.")
        else:
            initial = mean_se(curves[ok, 0])[0]
            trained = not (math.isfinite(initial) and start > (1 - NO_PROGRESS) * initial)
            sentences.append(f"- {where}: stayed stable past the horizon: loss {start:.4g} at step {horizon}, "
                             f"{end:.4g} at step {longest}, no run diverged ({runs} runs)."
                             + ("" if trained else f" But it did not train: the loss started at {initial:.4g} "
                                f"and was still {start:.4g} at the horizon."))
    return [Row(task, label, runs, diverged, values)]


def _fmt(mean: float, se: float) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.4g} ± {se:.2g}"


def markdown_table(rows: list[Row], columns: list[str]) -> str:
    head = ["task", "optimizer", "runs", "diverged"] + columns
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.task, r.optimizer, str(r.runs), f"{r.diverged}/{r.runs}"]
        cells += [_fmt(*r.values.get(c, (float("nan"), float("nan")))) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_table(rows: list[Row], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    slug = [c.replace(" ", "_").replace("-", "_") for c in columns]
    writer.writerow(["task", "optimizer", "runs", "diverged"] + [f"{s}_{k}" for s in slug for k in ("mean", "se")])
    for r in rows:
        vals = []
        for c in columns:
            m, s = r.values.get(c, (float("nan"), float("nan")))
            vals += [f"{m:.6g}", f"{s:.6g}"]
        writer.writerow([r.task, r.optimizer, r.runs, r.diverged] + vals)
    return buf.getvalue()


def _band(ax, x, runs: np.ndarray, label: str, color=None, linestyle="-"):
    mean = runs.mean(axis=0)
    line, = ax.plot(x, mean, label=label, color=color, linestyle=linestyle, linewidth=1.4)
    if runs.shape[0] > 1:
        se = runs.std(axis=0, ddof=1) / math.sqrt(runs.shape[0])
        ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def plot_meta_training(cells: list[CellData], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(c.task for c in cells))
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (t, variant), group in _groups(cells).items():
            if t != task:
                continue
            series = [ema(c.meta_loss, meta_ema(c.meta_loss.size)) for c in group if c.meta_loss.size]
            if not series:
                continue
            n = min(s.size for s in series)
            steps = next(c.meta_steps for c in group if c.meta_steps.size)[:n]
            _band(ax, steps, np.stack([s[:n] for s in series]),
                  f"{variant} ({len(series)} seed{'s' if len(series) > 1 else ''})")
        ax.set_title(f"meta-training: {task}")
        ax.set_xlabel("meta-step")
        n = max((c.meta_loss.size for c in cells if c.task == task), default=0)
        ax.set_ylabel(f"meta-loss (EMA {meta_ema(n):.3g})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_inner_training(cells: list[CellData], h: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(c.task for c in cells if h in c.curves))
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(6 * max(1, len(tasks)), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        group_all = [c for c in cells if c.task == task]
        entries = [(variant, g, LEARNED, "-") for (t, variant), g in _groups(cells).items() if t == task]
        entries += [(name, group_all, name, "-") for name in _baselines(group_all, h)]
        top, bottom = 0.0, float("inf")
        for label, group, name, style in entries:
            curves, flags = _runs(group, h, name)
            if not curves.size:
                continue
            smoothed = ema(curves)
            x = np.arange(1, smoothed.shape[1] + 1)
            color = "0.3" if name != LEARNED else None
            n_div = int((flags | ~np.isfinite(smoothed).all(axis=1)).sum())
            tag = f" ({n_div}/{len(flags)} diverged)" if n_div else ""
            _band(ax, x, smoothed, f"{label}{tag}", color=color, linestyle=style if name == LEARNED else ":")
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
        ax.set_xlabel("inner step")
        ax.set_ylabel(f"training loss (EMA {EMA})")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: str | Path) -> Path:
    """Write the plots and the summary table of the grid run in ``out``; return the report folder."""
    out = Path(out)
    grid, cells = load_cells(out)
    folder = report_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    plot_meta_training(cells, folder / "meta_training.png")
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
    md += ["", "## Stability past the meta-training horizon", ""]
    md += sentences or ["- no evaluation yet."]
    md += ["", "## Summary", "",
           "Mean ± standard error over runs (meta-training seeds x evaluation seeds; the final meta-loss "
           "over meta-training seeds). \"loss at S\" is the mean training loss over the last 5% of the steps "
           "up to step S; \"loss at horizon\" is at the meta-training horizon; \"mean loss over horizon\" is "
           "the meta-objective (mean over the first horizon steps); diverged runs are counted and left out "
           "of the means. Plots: EMA 0.98.", "",
           markdown_table(rows, columns), "", "## Plots", "", "![meta-training](meta_training.png)", ""]
    md += [f"![inner training, {h} steps](inner_training_h{h}.png)" for h in horizons]
    from lofw.grid.ood_report import ood_section  # a grid's eval.tasks (out of distribution)
    md += ood_section(out, folder)
    (folder / "summary.md").write_text("\n".join(md) + "\n")
    return folder
