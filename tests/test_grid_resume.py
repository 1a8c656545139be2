"""End to end on a tiny grid with the real meta_train/evaluate: a run killed
with SIGKILL (mid meta-training, then again at another moment) and rerun ends
with exactly the results of an uninterrupted run; ``--jobs 2`` and ``--cell``
give the same results too; the report is written.

Each ``lofw`` process compiles the meta-step and the evaluation; the runs
share a persistent JAX compilation cache so only the first one pays for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from lofw.runtime.disk import read_json

TINY = {
    "name": "tiny",
    "base": {
        "recipe": "star",
        "task": {"name": "image_mlp", "dataset": {"name": "digits"}, "hidden_sizes": [8], "batch_size": 16},
        "estimator": {"name": "pes", "truncation": 5, "std": 0.01, "particles": 2},
        "outer": {"lr": 1.0e-3},
        "horizon": 10,
        "meta_steps": 12,
        "checkpoint_every": 2,
    },
    "seeds": [0, 1],
    "eval": {"horizons": [30], "seeds": 2, "baselines": ["adam"]},
}


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "jax_cache")
    return env


def _ablate(grid: Path, out: Path, env, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lofw.cli.main", "ablate", str(grid), "--out", str(out),
                             "--no-progress", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output
    return output


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 600, may_end: bool = False) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        if proc.poll() is not None:
            if may_end and proc.returncode == 0:
                return
            raise AssertionError(f"process ended before the kill point:\n{proc.stdout.read()}")
        time.sleep(0.02)
    raise AssertionError("kill point not reached")


def _results(out: Path) -> dict[str, object]:
    """Everything a run computes, per cell: metrics lines, evaluation summaries and curves, status."""
    grid = read_json(out / "grid.json")
    results = {}
    for cell in grid["cells"]:
        folder = out / "cells" / cell["id"]
        if not (folder / "run" / "metrics.jsonl").is_file():
            continue
        metrics = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
        for m in metrics:  # wall-clock fields, if any, differ between runs
            m.pop("seconds", None), m.pop("time", None), m.pop("steps_per_second", None)
        evals = {}
        for h in sorted((folder / "eval").iterdir()):
            with np.load(h / "curves.npz") as npz:
                curves = {k: npz[k].tolist() for k in npz.files}
            summary = read_json(h / "summary.json")
            evals[h.name] = (summary["optimizers"], curves)
        results[cell["id"]] = (read_json(folder / "cell_status.json")["status"], metrics, evals)
    return results


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    grid = tmp_path / "tiny.yaml"
    grid.write_text(yaml.safe_dump(TINY))
    env = _env(tmp_path)
    killed = tmp_path / "killed"
    # Kill 1: in the middle of the first cell's meta-training (after 5 of 12
    # meta-steps; checkpoints every 2).
    proc = _ablate(grid, killed, env)
    first = lambda: [read_json(killed / "grid.json")["cells"][0]["id"]] if (killed / "grid.json").is_file() else []
    metrics = lambda: killed / "cells" / first()[0] / "run" / "metrics.jsonl"
    _wait_for(lambda: first() and metrics().is_file() and len(metrics().read_text().splitlines()) >= 5, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Kill 2: once the first cell's evaluation is on disk (while its status is
    # written or the second cell starts), unless the run is already over.
    proc = _ablate(grid, killed, env)
    _wait_for(lambda: (killed / "cells" / first()[0] / "eval" / "h30").is_dir(), proc, may_end=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _finish(_ablate(grid, killed, env))

    reference = tmp_path / "reference"   # uninterrupted, cells in two worker processes
    _finish(_ablate(grid, reference, env, "--jobs", "2"))
    expected = _results(reference)
    assert len(expected) == 2
    assert all(status in ("done", "diverged") and len(m) == 12 for status, m, _ in expected.values())
    assert (reference / "report" / "summary.md").is_file()
    assert (reference / "report" / "inner_training_h30.png").is_file()
    assert _results(killed) == expected

    # Rerunning a finished grid runs nothing; --cell runs one cell (a worker's job).
    assert "0 to run" in _finish(_ablate(grid, killed, env))
    cell = first()[0]
    single = tmp_path / "single"
    _finish(_ablate(grid, single, env, "--cell", cell, "--no-report"))
    assert _results(single) == {cell: expected[cell]}
