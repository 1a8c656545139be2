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

Every JSON file is written to a temporary name and renamed, so a run killed
at any moment leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

#: Cell statuses. ``done`` and ``diverged`` are finished; the others are resumed.
STATUSES = ("pending", "running", "done", "diverged", "failed")
FINISHED = ("done", "diverged")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_finite(data), f, indent=2, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSON-lines file (a torn last line is ignored)."""
    rows = []
    try:
        text = Path(path).read_text()
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _finite(obj: Any) -> Any:
    """Replace NaN/inf floats by strings so the JSON stays standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


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
