"""A grid run's results as arrays: the cells' meta-training curves and evaluation curves.

Reads only files (``grid.json`` and the cell folders, see
:mod:`lofw.grid.files`), so it works on a finished, partial or copied run.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from lofw.errors import ConfigError
from lofw.evaluation.stability import EMA
from lofw.grid.files import FINISHED, cell_dir, eval_dir, run_dir
from lofw.runtime.disk import read_json, read_jsonl

#: The evaluation curves' key of the learned optimizer (the others are baselines).
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
    """One cell's results: its meta-training curve and its evaluation curves."""

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
    chance: float | None = None                       # the task's chance loss (evaluate's summary.json)
    dead_steps: int = 0                               # dead meta-steps the meta-training ended with (lofw.meta.health)
    members: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # a mixture's meta_loss.<member>
                                                      # per meta-step (NaN where the member was not trained)
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # the grid's settings of this cell
    planned_meta_steps: int = 0                       # the config's meta_steps
    recipe: str | None = None                         # the recipe's registry name (None: an inline recipe)


def meta_training_ended(cell: CellData) -> bool:
    """The cell's meta-training is over: the cell is done or diverged, or its
    metrics reach the planned meta-steps (its evaluation may still be missing)."""
    if cell.status in FINISHED:
        return True
    return bool(cell.meta_steps.size) and cell.planned_meta_steps > 0 and cell.meta_steps[-1] >= cell.planned_meta_steps


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


MEMBER_PREFIX = "meta_loss."


def _member_losses(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """``meta_loss.<member>`` of every metrics line, NaN on the lines without it."""
    names = sorted({k[len(MEMBER_PREFIX):] for r in rows for k in r if k.startswith(MEMBER_PREFIX)})
    return {m: np.asarray([_float(r.get(MEMBER_PREFIX + m)) for r in rows]) for m in names}


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
        chance = None
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
            chance = summary.get("chance_loss", chance)
        cells.append(CellData(
            id=cid, variant=entry.get("variant", "base"), task=_task_label(meta.get("task")),
            seed=int(entry.get("seed", meta.get("seed", 0))), horizon=int(meta.get("horizon", 0)), status=status,
            meta_steps=np.asarray([_float(r.get("step")) for r in rows]),
            meta_loss=np.asarray([_float(r.get("meta_loss")) for r in rows]),
            curves=curves, diverged=diverged, chance=None if chance is None else float(chance),
            dead_steps=int(rows[-1].get("dead_steps", 0)) if rows else 0,
            members=_member_losses(rows),
            overrides=dict(entry.get("overrides", {})),
            planned_meta_steps=int(meta.get("meta_steps", 0)),
            recipe=meta.get("recipe") if isinstance(meta.get("recipe"), str) else None,
        ))
    return grid, cells


def stack_runs(cells: list[CellData], h: int, name: str) -> tuple[np.ndarray, np.ndarray]:
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


def variant_groups(cells: list[CellData]) -> dict[tuple[str, str], list[CellData]]:
    groups: dict[tuple[str, str], list[CellData]] = {}
    for c in cells:
        groups.setdefault((c.task, c.variant), []).append(c)
    return groups


def baseline_names(cells: list[CellData], h: int) -> list[str]:
    names = []
    for c in cells:
        for name in c.curves.get(h, {}):
            if name != LEARNED and name not in names:
                names.append(name)
    return names
