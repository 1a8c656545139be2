"""Out-of-distribution evaluation of grid cells: a grid's ``eval.tasks``.

Every finished cell's meta-trained optimizer trains fresh instances of each
task of ``eval.tasks`` (a suite of ``registry.yaml`` or a list of task names)
with :func:`lofw.evaluation.generalize.run_task`: the same seeds and settings for every
cell, for the suite entry's steps or else the cell's longest evaluation
horizon, with ``eval.seeds`` seeds. The cells that train the grid's
in-distribution baselines (:func:`lofw.grid.runner.baseline_owners`) also
train them on these tasks (``NAME@horizon`` tuned for the cell's
meta-training horizon, as in the grid's own evaluation). Files::

    cells/<id>/generalize/<task>/learned/{curves.npz, summary.json}
    cells/<id>/generalize/<task>/<baseline>/{curves.npz, summary.json, tuning.json}

The stability horizon of the learned optimizer is the cell's meta-training
horizon. The report (:mod:`lofw.grid.ood_report`) adds a per-task table.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from lofw.errors import ConfigError, choices
from lofw.evaluation.generalize import Item, Settings, identity, is_done, run_task, slug
from lofw.evaluation.sources import Source
from lofw.grid.files import cell_dir, run_dir
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.meta.checkpoint import read_checkpoint_header
from lofw.registry import Registry, load_registry

#: Folder of the out-of-distribution results inside a cell folder.
OOD_DIR = "generalize"
#: Name of the cell's own optimizer in the results.
LEARNED = "learned"
#: Evaluation seed shared by every cell (as lofw.grid.runner's).
EVAL_SEED = 0


@dataclasses.dataclass(frozen=True)
class OodTask:
    """One task of ``eval.tasks``: its name, its steps (None: the longest horizon) and its definition."""

    task: str
    steps: int | None
    spec: Any


def resolve_eval_tasks(tasks: str | list[str] | None, source: str, registry: Registry) -> tuple[OodTask, ...]:
    """Validate ``eval.tasks`` of the grid file ``source``.

    Raises:
        ConfigError: an unknown suite or task, an empty or repeated entry;
            the message names the file, the path and the valid choices.
    """
    if tasks is None:
        return ()
    if isinstance(tasks, str):
        if tasks not in registry.suites:
            raise ConfigError(
                f"{source}: eval.tasks: unknown suite {tasks!r}; valid choices: {choices(registry.suites)} "
                f"(suites: section of {registry.path}), or a list of task names"
            )
        entries = [(e.task, e.steps) for e in registry.suites[tasks]]
    else:
        if not tasks:
            raise ConfigError(f"{source}: eval.tasks: empty list; give task names ({choices(registry.tasks)}) "
                              f"or a suite name ({choices(registry.suites)})")
        for i, name in enumerate(tasks):
            if name not in registry.tasks:
                raise ConfigError(f"{source}: eval.tasks[{i}]: unknown task {name!r}; valid choices: "
                                  f"{choices(registry.tasks)}")
            if name in tasks[:i]:
                raise ConfigError(f"{source}: eval.tasks[{i}]: task {name!r} is listed twice")
        entries = [(name, None) for name in tasks]
    return tuple(OodTask(name, steps, registry.tasks[name]) for name, steps in entries)


def _settings(cell) -> Settings:
    return Settings(seeds=cell.eval.seeds, seed=EVAL_SEED)


def _steps(cell, t: OodTask) -> int:
    return int(t.steps or max(cell.eval.horizons))


def ood_folder(out: Path, cell_id: str, task: str) -> Path:
    return cell_dir(out, cell_id) / OOD_DIR / task


def _items(out: Path, cell, t: OodTask, baselines: tuple[str, ...], optimizer: Any = None) -> list[Item]:
    step = (read_checkpoint_header(run_dir(out, cell.id)) or {}).get("step")
    folder = ood_folder(out, cell.id, t.task)
    learned = Source(LEARNED, optimizer, horizon=cell.config.horizon, ident=f"cell {cell.id} step {step}")
    return [Item(LEARNED, folder / LEARNED, source=learned)] + [
        Item(b, folder / slug(b), baseline=_at_horizon(b, cell.config.horizon)) for b in baselines
    ]


def _at_horizon(baseline: str, horizon: int) -> str:
    """``NAME@horizon`` (tuned for the cell's meta-training horizon) as ``NAME@<horizon>``."""
    name, _, tune_for = baseline.partition("@")
    return f"{name}@{horizon}" if tune_for == "horizon" else baseline


def ood_complete(out: Path, cell, baselines: tuple[str, ...] = ()) -> bool:
    """True when every ``eval.tasks`` result of the cell is on disk with matching settings."""
    settings = _settings(cell)
    return all(
        is_done(item, identity(item, t.task, _steps(cell, t), settings, t.spec))
        for t in cell.ood for item in _items(Path(out), cell, t, baselines)
    )


def run_ood(
    out: Path, cell, optimizer: AbstractOptimizer, baselines: tuple[str, ...], registry: Registry | None,
    say: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Evaluate the cell's meta-trained ``optimizer`` (and ``baselines``) on every ``eval.tasks`` task
    not yet done; return task -> diverged seeds of the learned optimizer (for the tasks run now)."""
    if not cell.ood:
        return {}
    registry = registry if registry is not None else load_registry()
    diverged = {}
    for t in cell.ood:
        items = _items(Path(out), cell, t, baselines, optimizer)
        if say is not None and not ood_complete(out, dataclasses.replace(cell, ood=(t,)), baselines):
            say(f"  out of distribution: {t.task}, {_steps(cell, t)} steps x {cell.eval.seeds} seeds")
        written = run_task(t.task, _steps(cell, t), items, _settings(cell), registry)
        if LEARNED in written:
            diverged[t.task] = int(written[LEARNED]["n_diverged"])
    return diverged
