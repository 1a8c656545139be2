"""Running a grid: every cell meta-trained, then evaluated past its horizon.

A cell runs in three resumable stages, each leaving files that the next run
trusts (see :mod:`lofw.grid.files` for the layout):

1. ``lofw.meta_train(cell.config, out=cell_dir/"run")``: resumes from the
   run's own checkpoint and returns at once (with the checkpoint's
   optimizer) when it is finished.
2. For each evaluation horizon ``H``: ``lofw.evaluate`` of the optimizer
   meta_train returned (in memory, as a :class:`lofw.Source` with the cell's
   task and horizon) into a scratch folder
   ``eval/h<H>.partial`` that is renamed to ``eval/h<H>`` when complete, so a
   killed evaluation is simply redone (evaluation is deterministic).
3. ``cell_status.json``: ``done``, or ``diverged`` when the meta-loss became
   non-finite or any evaluation seed of the learned optimizer diverged.
   Any other error marks the cell ``failed`` (with the message) and the grid
   goes on; rerunning retries failed cells.

Evaluation uses the same task instances (evaluation seed 0) for every cell,
so cells and baselines are compared on common random numbers; the baselines
of a (task, horizons, seeds) group are trained once, by the first cell of the
group in expansion order.

With ``jobs > 1`` cells run in that many worker processes, each a plain
``python -m lofw.cli.main ablate SPEC --out OUT --cell ID`` whose output goes to
the cell's ``log.txt``.

One writer per cell: a cell is run under its folder's lock
(:mod:`lofw.runtime.locks`), so several ``lofw ablate`` processes (or hosts sharing
the folder) can work on one grid: a cell held by another process is skipped
(status :data:`HELD`) and the others are run. Damaged files are repaired
from what is known: a ``cell.json`` is rewritten from the grid spec (its id
is the hash of its contents), an unreadable evaluation ``summary.json`` is
evaluated again, each with a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from lofw.errors import RunFailed
from lofw.evaluation.evaluate import evaluate
from lofw.evaluation.sources import Source
from lofw.grid.expand import canonical_json, variant_label
from lofw.grid.files import FINISHED, cell_dir, cells_dir, eval_dir, run_dir
from lofw.grid.ood import ood_complete, run_ood
from lofw.grid.populations import DEFAULT_POPULATION, plan_populations
from lofw.grid.validate import Cell, LoadedGrid
from lofw.loggers import log_curves
from lofw.meta.mixture import evaluation_task
from lofw.meta.population import meta_train_population
from lofw.meta.training import MetaTrainResult, meta_train
from lofw.registry import Registry, load_registry
from lofw.runtime.disk import read_json, read_jsonl, write_json
from lofw.runtime.locks import FolderBusyError, folder_lock, lock_holder
from lofw.runtime.workers import Job, run_workers

#: Name of the learned optimizer's curves in lofw.evaluate's output.
LEARNED = "learned"
#: Evaluation seed shared by every cell (common random numbers).
EVAL_SEED = 0
#: What :func:`run_cell` returns for a cell another process holds.
HELD = "held"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def baseline_owners(cells: list[Cell]) -> dict[str, tuple[str, ...]]:
    """cell id -> the baselines that cell trains (the first cell of each
    (task, horizons, evaluation seeds, baselines) group trains them)."""
    owners: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    for cell in sorted(cells, key=lambda c: c.index):
        if not cell.eval.baselines:
            continue
        key = canonical_json([cell.resolved["task"], cell.eval.horizons, cell.eval.seeds, cell.eval.baselines])
        if key not in seen:
            seen.add(key)
            owners[cell.id] = tuple(cell.eval.baselines)
    return owners


def cell_label(cell: Cell) -> str:
    return f"{variant_label(cell.variant)}, seed={cell.config.seed}"


def _eval_complete(
    out: Path, cell: Cell, steps: int, baselines: tuple[str, ...], warn: bool = False
) -> dict[str, Any] | None:
    folder = eval_dir(out, cell.id, steps)
    summary = read_json(folder / "summary.json")
    if not isinstance(summary, dict) or not (folder / "curves.npz").is_file():
        if warn and (folder / "summary.json").exists():
            _say(f"  warning: {folder / 'summary.json'} is damaged (not a JSON summary); evaluating again")
        return None
    names = set(summary.get("optimizers", {}))
    return summary if {LEARNED, *baselines} <= names else None


def is_finished(out: Path, cell: Cell, baselines: tuple[str, ...] = ()) -> bool:
    """True when the cell's status is done/diverged and every evaluation is on disk."""
    status = read_json(cell_dir(out, cell.id) / "cell_status.json") or {}
    if status.get("status") not in FINISHED:
        return False
    return all(_eval_complete(out, cell, h, baselines) is not None for h in cell.eval.horizons) \
        and ood_complete(out, cell, baselines)


def cell_status(out: Path, cell: Cell) -> str:
    status = read_json(cell_dir(out, cell.id) / "cell_status.json") or {}
    return status.get("status", "pending")


def _set_status(folder: Path, status: str, **extra: Any) -> None:
    previous = read_json(folder / "cell_status.json") or {}
    write_json(folder / "cell_status.json", {**previous, "status": status, "updated": time.time(), **extra})


def prepare(loaded: LoadedGrid, out: Path) -> None:
    """Create ``out``, write ``grid.json``, and give every new cell a folder with
    its resolved config and status ``pending``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "grid.json", {
        "name": loaded.grid.name,
        "source": loaded.source,
        "spec": loaded.spec,
        "grid": loaded.grid.model_dump(mode="json"),
        "cells": [
            {"id": c.id, "index": c.index, "overrides": c.overrides, "variant": variant_label(c.variant),
             "seed": c.config.seed}
            for c in loaded.cells
        ],
    })
    for cell in loaded.cells:
        folder = cell_dir(out, cell.id)
        stored = read_json(folder / "cell.json")
        if (folder / "cell.json").exists() and (not isinstance(stored, dict) or stored.get("id") != cell.id):
            _say(f"warning: {folder / 'cell.json'} is damaged; rewritten from the grid spec "
                 f"(the folder name {cell.id} is the hash of its contents)")
            stored = None
        if stored is None:
            write_json(folder / "cell.json", {
                "id": cell.id, "grid": loaded.grid.name, "index": cell.index,
                "overrides": cell.overrides, "variant": variant_label(cell.variant),
                "resolved": cell.resolved,
            })
        if read_json(folder / "cell_status.json") is None:
            _set_status(folder, "pending", attempts=0)
    ids = {cell.id for cell in loaded.cells}
    folders = cells_dir(out).iterdir() if cells_dir(out).is_dir() else ()
    strays = sorted(p.name for p in folders if p.is_dir() and p.name not in ids)
    if strays:
        _say(f"note: {len(strays)} folder(s) in {cells_dir(out)} are no cell of this grid (the grid was edited, "
             f"or they were made by another lofw version), kept and not used: {', '.join(strays[:5])}"
             + (", ..." if len(strays) > 5 else ""))


def _finite_metrics(rows: list[dict[str, Any]]) -> bool:
    if not rows:
        return True
    last = rows[-1]
    for key in ("meta_loss", "theta_norm"):
        value = last.get(key)
        if isinstance(value, str) or (isinstance(value, float) and not math.isfinite(value)):
            return False
    return True


def run_cell(
    loaded: LoadedGrid,
    cell: Cell,
    out: Path,
    registry: Registry | None = None,
    progress: bool = True,
    baselines: tuple[str, ...] | None = None,
) -> str:
    """Run (or resume) one cell to the end; return its final status.

    Args:
        loaded: the validated grid.
        cell: the cell to run.
        out: the grid's output folder (:func:`prepare` must have run).
        registry: registry for names (default the project's).
        progress: show meta-training's progress bar.
        baselines: baselines this cell trains (default: from :func:`baseline_owners`).
    """
    out = Path(out)
    if baselines is None:
        baselines = baseline_owners(loaded.cells).get(cell.id, ())
    folder = cell_dir(out, cell.id)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        lock = folder_lock(folder, "this grid cell")
        lock.__enter__()
    except FolderBusyError as e:
        if progress:
            _say(f"  cell {cell.id} is held by process {e.pid}; skipped")
        return HELD
    try:
        if is_finished(out, cell, baselines):  # another process finished it meanwhile
            return cell_status(out, cell)
        return _run_locked(cell, out, folder, registry, progress, baselines)
    finally:
        lock.__exit__(None, None, None)


def _run_locked(cell: Cell, out: Path, folder: Path, registry, progress: bool, baselines: tuple[str, ...],
                begin: bool = True) -> str:
    if begin:
        _begin(folder)
    start = time.time()
    with _recorded(cell, folder, start) as outcome:
        result = meta_train(cell.config, out=run_dir(out, cell.id), registry=registry, progress=progress)
        outcome.status = _after_training(cell, out, folder, registry, progress, baselines, result, start)
    return outcome.status


def _begin(folder: Path) -> None:
    previous = read_json(folder / "cell_status.json") or {}
    _set_status(folder, "running", attempts=int(previous.get("attempts", 0)) + 1, error=None, pid=os.getpid())


@dataclasses.dataclass
class _Outcome:
    status: str = "failed"


@contextlib.contextmanager
def _recorded(cell: Cell, folder: Path, start: float):
    """Record what goes wrong in a cell: Ctrl-C leaves it ``running`` (interrupted); any other
    error marks it ``failed`` with the message (traceback in ``error.txt``) and the grid goes on."""
    outcome = _Outcome()
    try:
        yield outcome
    except KeyboardInterrupt:
        _set_status(folder, "running", pid=None, error="interrupted")
        raise
    except Exception as e:  # noqa: BLE001 - a failed cell is recorded; the grid goes on
        outcome.status = _failed(cell, folder, start, e)


def _failed(cell: Cell, folder: Path, start: float, error: Exception) -> str:
    message = f"{type(error).__name__}: {error}"
    _set_status(folder, "failed", error=message, pid=None, seconds=time.time() - start)
    (folder / "error.txt").write_text("".join(traceback.format_exception(error)))
    _say(f"  cell {cell.id} failed: {message} (traceback in {folder / 'error.txt'})")
    return "failed"


def _after_training(cell: Cell, out: Path, folder: Path, registry, progress: bool, baselines: tuple[str, ...],
                    result: MetaTrainResult, start: float) -> str:
    """Stages 2 and 3 of a cell whose meta-training returned ``result``: evaluate, set the status."""
    if result.status != "finished":
        return "running"
    run = run_dir(out, cell.id)
    source = Source(cell_label(cell), result.optimizer, task=evaluation_task(result.config.task, registry or load_registry()),
                    horizon=result.config.horizon,
                    run_dir=run, kind="cell")
    diverged = {}
    meta_ok = _finite_metrics(read_jsonl(run / "metrics.jsonl"))
    for steps in cell.eval.horizons:
        summary = _eval_complete(out, cell, steps, baselines, warn=True)
        if summary is None:
            if progress:
                _say(f"  evaluating {steps} steps x {cell.eval.seeds} seeds"
                     + (f" (+ baselines {', '.join(baselines)})" if baselines else ""))
            target = eval_dir(out, cell.id, steps)
            scratch = target.with_name(target.name + ".partial")
            shutil.rmtree(scratch, ignore_errors=True)
            evaluated = evaluate(source, steps=steps, seeds=cell.eval.seeds, baselines=list(baselines),
                                 out=scratch, seed=EVAL_SEED, registry=registry)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(scratch, target)
            log_curves(target, getattr(evaluated, "curves", None))
            summary = _eval_complete(out, cell, steps, baselines)
            if summary is None:
                raise RuntimeError(f"lofw.evaluate wrote no complete summary in {target}")
        diverged[str(steps)] = int(summary["optimizers"][LEARNED].get("n_diverged", 0))
    run_ood(out, cell, result.optimizer, baselines, registry, _say if progress else None)  # eval.tasks
    status = "diverged" if (not meta_ok or any(diverged.values())) else "done"
    _set_status(folder, status, seconds=time.time() - start, meta_loss_finite=meta_ok,
                eval_diverged=diverged, pid=None)
    return status


def run_population(
    loaded: LoadedGrid,
    cells: list[Cell],
    out: Path,
    registry: Registry | None = None,
    progress: bool = True,
) -> dict[str, str]:
    """Run (or resume) ``cells`` as one population (:mod:`lofw.grid.populations`); return id -> status.

    Each cell is locked, trained, evaluated and recorded as by :func:`run_cell`;
    a cell held by another process is skipped (:data:`HELD`) and a finished one
    is left as it is. Only the meta-training is shared: the members'
    meta-steps run as one vmapped program
    (:func:`lofw.meta.population.meta_train_population`); a member whose
    meta-parameters become non-finite is marked ``failed`` and the others go
    on. Evaluation then runs cell by cell. When the population cannot run
    at all (a member's folder holds another run, a damaged checkpoint), its
    cells run alone, so that one bad cell fails alone.
    """
    out = Path(out)
    owners = baseline_owners(loaded.cells)
    statuses: dict[str, str] = {}
    with contextlib.ExitStack() as locks:
        mine = []
        for cell in cells:
            folder = cell_dir(out, cell.id)
            folder.mkdir(parents=True, exist_ok=True)
            try:
                locks.enter_context(folder_lock(folder, "this grid cell"))
            except FolderBusyError as e:
                if progress:
                    _say(f"  cell {cell.id} is held by process {e.pid}; skipped")
                statuses[cell.id] = HELD
                continue
            if is_finished(out, cell, owners.get(cell.id, ())):  # another process finished it meanwhile
                statuses[cell.id] = cell_status(out, cell)
            else:
                mine.append(cell)
        start = time.time()
        for cell in mine:
            _begin(cell_dir(out, cell.id))
        try:
            results = meta_train_population([c.config for c in mine], outs=[run_dir(out, c.id) for c in mine],
                                            registry=registry, progress=progress) if mine else []
        except KeyboardInterrupt:
            for cell in mine:
                _set_status(cell_dir(out, cell.id), "running", pid=None, error="interrupted")
            raise
        except Exception as e:  # noqa: BLE001 - one member's folder or config may be at fault: run each alone
            _say(f"  the population could not run ({type(e).__name__}: {e}); running its {len(mine)} cells alone")
            for cell in mine:
                statuses[cell.id] = _run_locked(cell, out, cell_dir(out, cell.id), registry, progress,
                                                owners.get(cell.id, ()), begin=False)
            return statuses
        for cell, result in zip(mine, results):
            folder = cell_dir(out, cell.id)
            with _recorded(cell, folder, start) as outcome:
                if result.status == "failed":
                    raise RunFailed(result.warning)
                outcome.status = _after_training(cell, out, folder, registry, progress,
                                                 owners.get(cell.id, ()), result, start)
            statuses[cell.id] = outcome.status
    return statuses


@dataclasses.dataclass(frozen=True)
class GridOutcome:
    """Counts of cell statuses after a run, and the seconds it took."""

    counts: dict[str, int]
    seconds: float
    held: int = 0

    @property
    def ok(self) -> bool:
        """No cell failed, and every unfinished cell is held by another process."""
        return self.counts.get("failed", 0) == 0 and self.counts.get("running", 0) <= self.held


def run_grid(
    loaded: LoadedGrid,
    out: str | Path,
    jobs: int = 1,
    registry: Registry | None = None,
    progress: bool = True,
    say: Callable[[str], None] = _say,
    log: tuple[str, ...] = (),
    population: int = DEFAULT_POPULATION,
) -> GridOutcome:
    """Run every unfinished cell of ``loaded`` into ``out`` (see module docstring).

    ``log`` names metrics loggers (:mod:`lofw.loggers`) that worker processes
    enable too (``--jobs``); in this process the caller enables them.
    ``population``: meta-train up to this many cells that share a program as
    one population (:mod:`lofw.grid.populations`); 1: every cell alone.
    """
    out = Path(out)
    start = time.time()
    prepare(loaded, out)
    owners = baseline_owners(loaded.cells)
    todo = [c for c in loaded.cells if not is_finished(out, c, owners.get(c.id, ()))]
    total = len(loaded.cells)
    say(f"grid {loaded.grid.name}: {total} cells, {total - len(todo)} finished, {len(todo)} to run -> {out}")
    held: set[str] = set()
    groups = plan_populations(todo, population, registry or load_registry())
    if jobs <= 1:
        k = 0
        for group in groups:
            names = ", ".join(f"{c.id} ({cell_label(c)})" for c in group)
            say(f"[{k + 1}/{len(todo)}] cell {names}" if len(group) == 1 else
                f"[{k + 1}-{k + len(group)}/{len(todo)}] population of {len(group)} cells: {names}")
            t0 = time.time()
            if len(group) == 1:
                statuses = {group[0].id: run_cell(loaded, group[0], out, registry=registry, progress=progress,
                                                  baselines=owners.get(group[0].id, ()))}
            else:
                statuses = run_population(loaded, group, out, registry=registry, progress=progress)
            for cell in group:
                k += 1
                if statuses[cell.id] == HELD:
                    held.add(cell.id)
                    say(f"[{k}/{len(todo)}] cell {cell.id}: held by another process, skipped")
                else:
                    say(f"[{k}/{len(todo)}] cell {cell.id}: {statuses[cell.id]} in {time.time() - t0:.0f} s")
    else:
        held = _run_workers(loaded, out, groups, jobs, say, registry, log)
    counts: dict[str, int] = {}
    for cell in loaded.cells:
        s = cell_status(out, cell)
        counts[s] = counts.get(s, 0) + 1
    return GridOutcome(counts=counts, seconds=time.time() - start, held=len(held))


def worker_args(
    loaded: LoadedGrid, out: Path, cell: Cell | list[Cell], registry: Registry | None = None,
    log: tuple[str, ...] = (),
) -> list[str]:
    """The arguments of ``python -m lofw.cli.main`` in a worker process that runs one cell
    (or a list of cells: one population)."""
    cells = cell if isinstance(cell, list) else [cell]
    args = ["ablate", loaded.spec, "--out", str(out), "--cell", ",".join(c.id for c in cells),
            "--no-report", "--no-progress"]
    if len(cells) > 1:
        args += ["--population", str(len(cells))]
    if registry is not None and registry.path is not None:
        args += ["--registry", str(registry.path)]
    for name in log:
        args += ["--log", name]
    return args


def _run_workers(
    loaded: LoadedGrid, out: Path, groups: list[list[Cell]], jobs: int, say: Callable[[str], None],
    registry: Registry | None, log: tuple[str, ...] = (),
) -> set[str]:
    """One worker per group (a cell, or a population: its cells' ids joined by commas)."""
    members = {",".join(c.id for c in group): group for group in groups}
    total = sum(len(group) for group in groups)
    held: set[str] = set()
    done = 0

    def should_start(job: Job) -> bool:
        free = False
        for cell in members[job.name]:
            holder = lock_holder(cell_dir(out, cell.id))
            if holder is not None:
                held.add(cell.id)
                say(f"cell {cell.id} ({cell_label(cell)}): held by process {holder}, skipped")
            free = free or holder is None
        return free

    def on_start(job: Job, pid: int) -> None:
        for cell in members[job.name]:
            say(f"started cell {cell.id} ({cell_label(cell)}) in worker pid {pid}")

    def on_done(job: Job, returncode: int, seconds: float) -> None:
        nonlocal done
        for cell in members[job.name]:
            status = cell_status(out, cell)
            busy = lock_holder(cell_dir(out, cell.id)) is not None
            if cell.id in held and (busy or status not in FINISHED):
                continue  # skipped at the start (a worker of a population may have run it after all)
            held.discard(cell.id)
            done += 1
            if status == "running" and busy:  # another process runs it: never mark it failed from here
                held.add(cell.id)
                status = "held by another process, skipped"
            elif returncode != 0 and status not in FINISHED:
                status = f"failed (worker exit {returncode}; see {job.log})"
                if cell_status(out, cell) == "running":
                    _set_status(cell_dir(out, cell.id), "failed", error=f"worker exit {returncode}", pid=None)
            say(f"[{done}/{total}] cell {cell.id} ({cell_label(cell)}): {status} in {seconds:.0f} s")

    run_workers(jobs, [Job(name, worker_args(loaded, out, group, registry, log), cell_dir(out, group[0].id) / "log.txt")
                       for name, group in members.items()], on_done, should_start=should_start, on_start=on_start)
    return held
