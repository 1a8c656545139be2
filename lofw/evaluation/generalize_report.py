"""The report of a ``lofw generalize`` run: one table and a Figure-4-style plot.

Reads only files (:mod:`lofw.evaluation.generalize` writes them), so it works on a
finished, partial or copied run. Table columns, per task and optimizer:

- ``final_loss`` (± ``final_loss_se``): per seed the mean raw training loss
  over the last 1% of the steps; mean and standard error over the seeds that
  did not diverge;
- ``mean_loss``: the mean task-normalised training loss over all steps and
  seeds (the meta-objective's measure; a diverged seed counts at the
  normaliser's cap);
- ``diverged``: seeds with a NaN/inf loss or a final loss above the cap;
- ``ratio_to_adam``: ``mean_loss`` over tuned Adam's on the same task
  (below 1: better than Adam);
- stability (:mod:`lofw.evaluation.stability`, from the stability horizon on):
  ``worst_ratio`` (the worst seed's), ``stable`` (seeds with worst ratio
  <= 2 and no non-finite loss), ``steps_above_chance`` (mean over seeds),
  ``nonfinite`` (seeds with a non-finite loss).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lofw.errors import ConfigError
from lofw.evaluation.plots import band, label_loss_axes, pyplot, save
from lofw.evaluation.stability import STABLE_RATIO, ema
from lofw.runtime.disk import atomic_write_bytes

COLUMNS = ["task", "optimizer", "seeds", "steps", "horizon", "final_loss", "final_loss_se", "mean_loss", "diverged",
           "ratio_to_adam", "worst_ratio", "stable", "steps_above_chance", "nonfinite"]


@dataclasses.dataclass
class Result:
    """One optimizer on one task, as read back from its folder."""

    task: str
    optimizer: str
    kind: str                 # "source" or "baseline"
    summary: dict[str, Any]
    curves: np.ndarray        # [seeds, steps]


def read_result(folder: Path, task: str, optimizer: str, kind: str) -> Result | None:
    """The result in ``folder`` (summary.json + curves.npz), or None when unfinished."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
        with np.load(folder / "curves.npz") as npz:
            curves = np.asarray(npz["loss"], np.float64)
    except (OSError, ValueError, KeyError):
        return None
    return Result(task, optimizer, kind, summary, curves)


def load_results(out: Path) -> tuple[dict[str, Any], list[Result]]:
    """The manifest and every finished result of a generalize output folder."""
    out = Path(out)
    try:
        manifest = json.loads((out / "generalize.json").read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{out}: not a generalize output folder (no readable generalize.json)") from None
    results = []
    for t in manifest.get("tasks", []):
        for o in manifest.get("optimizers", []):
            r = read_result(out / t["task"] / o["folder"], t["task"], o["name"], o.get("kind", "source"))
            if r is not None:
                results.append(r)
    return manifest, results


def _adam(results: list[Result], task: str) -> Result | None:
    names = [r for r in results if r.task == task and r.kind == "baseline"]
    exact = [r for r in names if r.optimizer == "adam"]
    tuned = exact or [r for r in names if r.optimizer.startswith("adam@")]
    return tuned[0] if tuned else None


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def table_rows(results: list[Result]) -> list[dict[str, Any]]:
    """One row per result, the :data:`COLUMNS` as numbers (NaN where not defined)."""
    rows = []
    for r in results:
        s = r.summary
        finals = [_num(f) for f, d in zip(s.get("final_loss", []), s.get("diverged", [])) if not d]
        finals = [f for f in finals if math.isfinite(f)]
        se = float(np.std(finals, ddof=1) / math.sqrt(len(finals))) if len(finals) > 1 else (0.0 if finals else math.nan)
        adam = _adam(results, r.task)
        mean = _num(s.get("mean_loss"))
        ratio = mean / _num(adam.summary.get("mean_loss")) if adam is not None else math.nan
        st = s.get("stability", {})
        worst = [_num(x) for x in st.get("worst_ratio", [])]
        nonfinite = [int(x) for x in st.get("nonfinite", [])]
        above = [_num(x) for x in st.get("steps_above_chance", [])]
        rows.append({
            "task": r.task, "optimizer": r.optimizer, "seeds": r.curves.shape[0], "steps": r.curves.shape[1],
            "horizon": int(s.get("horizon", r.curves.shape[1])),
            "final_loss": float(np.mean(finals)) if finals else math.nan, "final_loss_se": se,
            "mean_loss": mean, "diverged": int(s.get("n_diverged", 0)), "ratio_to_adam": ratio,
            "worst_ratio": max(worst) if worst else math.nan,
            "stable": sum(1 for w, n in zip(worst, nonfinite) if w <= STABLE_RATIO and n == 0),
            "steps_above_chance": float(np.mean(above)) if above and not any(math.isnan(a) for a in above) else math.nan,
            "nonfinite": sum(1 for n in nonfinite if n > 0),
        })
    return rows


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([f"{row[c]:.6g}" if isinstance(row[c], float) else row[c] for c in COLUMNS])
    return buf.getvalue()


def _g(x: float, digits: int = 4) -> str:
    return "–" if not math.isfinite(x) else f"{x:.{digits}g}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = ["task", "optimizer", "final loss", "mean loss", "diverged", "vs tuned Adam", "worst ratio", "stable",
            "steps above chance", "horizon"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        final = "–" if not math.isfinite(r["final_loss"]) else f"{r['final_loss']:.4g} ± {r['final_loss_se']:.2g}"
        past = r["horizon"] < r["steps"]   # with no step past the horizon there is nothing to judge
        cells = [r["task"], r["optimizer"], final, _g(r["mean_loss"]), f"{r['diverged']}/{r['seeds']}",
                 _g(r["ratio_to_adam"], 3), _g(r["worst_ratio"], 3) if past else "–",
                 f"{r['stable']}/{r['seeds']}" if past else "–", _g(r["steps_above_chance"], 3), str(r["horizon"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_suite(results: list[Result], path: Path, title: str = "") -> None:
    """One panel per task: training loss (log), EMA 0.98 per seed, mean ± s.e. over the finite seeds."""
    plt = pyplot()
    tasks = list(dict.fromkeys(r.task for r in results))
    n = max(1, len(tasks))
    cols = min(n, 4)
    rows_ = math.ceil(n / cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.5 * cols, 3.6 * rows_), squeeze=False)
    for ax in axes.ravel()[len(tasks):]:
        ax.set_visible(False)
    for ax, task in zip(axes.ravel(), tasks):
        for r in (r for r in results if r.task == task):
            smoothed = ema(r.curves)
            ok = np.isfinite(smoothed).all(axis=1) & ~np.asarray(r.summary.get("diverged", [False] * len(smoothed)), bool)
            tag = f" ({int((~ok).sum())}/{len(ok)} diverged)" if (~ok).any() else ""
            style = ":" if r.kind == "baseline" else "-"
            if not ok.any():
                ax.plot([], [], linestyle=style, label=f"{r.optimizer}{tag}")
                continue
            runs = smoothed[ok]
            band(ax, np.arange(1, runs.shape[1] + 1), runs, f"{r.optimizer}{tag}", linestyle=style, floor=1e-12)
        ax.set_yscale("log")
        ax.set_title(task)
        label_loss_axes(ax)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    save(fig, path)


def write_generalize_report(out: str | Path) -> Path:
    """Write ``summary.csv``, ``summary.md`` and ``generalize.png`` into ``out``; return ``out``."""
    out = Path(out)
    manifest, results = load_results(out)
    rows = table_rows(results)
    atomic_write_bytes(out / "summary.csv", csv_text(rows).encode())
    plot_suite(results, out / "generalize.png", f"suite {manifest.get('suite')}")
    expected = len(manifest.get("tasks", [])) * len(manifest.get("optimizers", []))
    settings = manifest.get("settings", {})
    md = [f"# Generalisation: suite `{manifest.get('suite')}`", "",
          f"{settings.get('seeds')} seeds per task (the same task instances for every optimizer); baselines tuned "
          f"on {settings.get('tune_seeds')} other seeds (NAdamW: {settings.get('nadamw_trials')} random-search "
          "trials). Final loss: mean ± s.e. over the seeds that did not diverge of the loss over the last 1% of "
          "the steps; mean loss: task-normalised, over all steps and seeds; vs tuned Adam: mean loss / Adam's; "
          "stability (from the horizon on): worst ratio of the EMA loss to its value at the horizon (worst seed), "
          "stable seeds (ratio <= 2, all finite), steps above the chance loss (mean over seeds).", ""]
    if len(results) < expected:
        md += [f"**{expected - len(results)} of {expected} (task, optimizer) runs not finished: "
               "the table covers the finished ones.**", ""]
    md += [markdown_table(rows), "", "![generalisation](generalize.png)", ""]
    atomic_write_bytes(out / "summary.md", "\n".join(md).encode())
    return out
