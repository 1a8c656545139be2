"""The out-of-distribution part of a grid report (a grid's ``eval.tasks``).

Reads ``cells/<id>/generalize/<task>/<optimizer>/`` (:mod:`lofw.grid.ood`)
and writes ``report/ood_summary.csv`` and ``report/ood.png``: per task, one
row per variant (its runs are meta-training seeds x evaluation seeds) and
one per baseline, with the columns of :mod:`lofw.evaluation.generalize_report`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lofw.evaluation.generalize_report import Result, csv_text, markdown_table, plot_suite, read_result, table_rows
from lofw.grid.files import cells_dir
from lofw.grid.ood import LEARNED, OOD_DIR
from lofw.runtime.disk import read_json


def _merge(results: list[Result], label: str) -> Result:
    """One result of several cells (runs stacked; per-run lists concatenated)."""
    n = min(r.curves.shape[1] for r in results)
    summary: dict = {"horizon": results[0].summary.get("horizon")}
    for key in ("final_loss", "diverged"):
        summary[key] = [x for r in results for x in r.summary.get(key, [])]
    summary["n_diverged"] = sum(int(r.summary.get("n_diverged", 0)) for r in results)
    summary["mean_loss"] = float(np.mean([r.summary.get("mean_loss", np.nan) or np.nan for r in results]))
    summary["stability"] = {
        key: [x for r in results for x in r.summary.get("stability", {}).get(key, [])]
        for key in ("worst_ratio", "steps_above_chance", "nonfinite")
    }
    curves = np.concatenate([r.curves[:, :n] for r in results])
    return Result(results[0].task, label, "source", summary, curves)


def ood_results(out: Path) -> list[Result]:
    """Every finished out-of-distribution result of the grid run in ``out``, grouped by variant."""
    grid = read_json(Path(out) / "grid.json") or {}
    groups: dict[tuple[str, str], list[Result]] = {}
    baselines: dict[tuple[str, str], Result] = {}
    for entry in grid.get("cells", []):
        root = cells_dir(out) / entry["id"] / OOD_DIR
        if not root.is_dir():
            continue
        for task_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for opt_dir in sorted(p for p in task_dir.iterdir() if p.is_dir()):
                kind = "source" if opt_dir.name == LEARNED else "baseline"
                r = read_result(opt_dir, task_dir.name, opt_dir.name, kind)
                if r is None:
                    continue
                if kind == "source":
                    groups.setdefault((task_dir.name, entry.get("variant", "base")), []).append(r)
                else:
                    r.optimizer = r.summary.get("optimizer", opt_dir.name)
                    baselines.setdefault((task_dir.name, r.optimizer), r)
    results = []
    for task in dict.fromkeys(t for t, _ in [*groups, *baselines]):
        results += [_merge(rs, variant) for (t, variant), rs in groups.items() if t == task]
        results += [r for (t, _), r in baselines.items() if t == task]
    return results


def ood_section(out: Path, folder: Path) -> list[str]:
    """Write the out-of-distribution table and plot into ``folder``; return the summary.md lines
    (none when the grid has no ``eval.tasks`` results)."""
    results = ood_results(out)
    if not results:
        return []
    rows = table_rows(results)
    (Path(folder) / "ood_summary.csv").write_text(csv_text(rows))
    plot_suite(results, Path(folder) / "ood.png", "out of distribution (eval.tasks)")
    return ["", "## Out of distribution (eval.tasks)", "",
            "Each variant's meta-trained optimizers on tasks it was not meta-trained on (runs: meta-training "
            "seeds x evaluation seeds), beside the baselines tuned per task. Columns as in `lofw generalize`: "
            "final loss over the seeds that did not diverge, mean task-normalised loss, its ratio to tuned "
            "Adam's, and the stability past the meta-training horizon.", "",
            markdown_table(rows), "", "![out of distribution](ood.png)"]
