"""The on-disk layout of a grid run, and atomic JSON files.

::

    OUT/
      grid.json                 the grid: name, source, settings, the cell list
      cells/<id>/               one folder per cell
        cell.json               the fully resolved cell (its id is the hash of "resolved")
        cell_status.json        {"status": pending|running|done|diverged|failed, ...}
        run/                    the meta-training run folder (lofw.meta_train):
                                config.json, metrics.jsonl, checkpoint.eqx, status.json
        eval/h<steps>/          summary.json + curves.npz (lofw.evaluate), one per eval horizon
        log.txt                 output of a worker process (--jobs N)
        error.txt               the traceback of a failed attempt
      report/                   plots and summary table (lofw.grid.report)

Every file is written atomically (:mod:`lofw.runtime.disk`), so a run killed at any
moment leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

from pathlib import Path

#: Cell statuses. ``done`` and ``diverged`` are finished; the others are resumed.
STATUSES = ("pending", "running", "done", "diverged", "failed")
FINISHED = ("done", "diverged")


def cells_dir(out: Path) -> Path:
    return Path(out) / "cells"


def cell_dir(out: Path, cell_id: str) -> Path:
    return cells_dir(out) / cell_id


def run_dir(out: Path, cell_id: str) -> Path:
    """The cell's meta-training run folder (``lofw.meta_train``'s ``out``)."""
    return cell_dir(out, cell_id) / "run"


def eval_dir(out: Path, cell_id: str, steps: int) -> Path:
    return cell_dir(out, cell_id) / "eval" / f"h{steps}"


def report_dir(out: Path) -> Path:
    return Path(out) / "report"
