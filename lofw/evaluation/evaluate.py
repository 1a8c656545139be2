"""``evaluate``: train fresh task instances with an optimizer, past the horizon.

Every seed of one optimizer is trained in ONE compiled call
(:func:`lofw.evaluation.curves.train_curves`). A seed whose loss becomes NaN/inf, or
whose final loss is above the task normaliser's maximum, is marked
diverged; nothing raises.

Baselines (:mod:`lofw.evaluation.baselines`), trained in the same way on the same task
and seeds, each with its learning rate from ``lr_grid`` picked by the lowest
mean normalised training loss on separate tuning seeds: ``adam``,
``nadamw``, and ``NAME@N`` / ``NAME@horizon`` for the learning rate that is
best over the first ``N`` steps or over the source's meta-training horizon
(``adam@horizon`` is the fair comparison inside that horizon; plain
``adam`` is tuned for the whole evaluation).

Files written to ``<run_dir>/eval/<task>-<steps>/`` (or ``out``)::

    summary.json   {"task", "steps", "seeds", "optimizers": {NAME: {
                      "final_loss": [per seed],       # mean of the last 1% of steps
                      "final_loss_mean", "mean_loss", # mean over steps and seeds
                      "diverged": [per seed bool], "n_diverged",
                      "lr": float (baselines only), "lr_grid_losses": {...}}}}
    curves.npz     NAME -> float32 [seeds, steps] raw training loss per step
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lofw.errors import ConfigError
from lofw.evaluation.baselines import LR_GRID, OptaxBaseline, parse_baseline
from lofw.evaluation.curves import baseline_grid_curves, finite, normalised, seed_keys, summarise, train_curves
from lofw.evaluation.sources import Source, resolve_source
from lofw.evaluation.verdicts import verdicts
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.interfaces.task import AbstractTask
from lofw.registry import Registry, load_registry
from lofw.runtime import distributed
from lofw.runtime.disk import write_json, write_npz
from lofw.tasks import build_task

#: Evaluation length for a source with no meta-training horizon (an optimizer object).
DEFAULT_STEPS = 20000


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` returns.

    Attributes:
        curves: optimizer name (``"learned"``, ``"adam"``, ``"nadamw"``) ->
            ``[seeds, steps]`` training losses.
        summary: the contents of ``summary.json``; its ``warnings`` list says
            when an optimizer diverged on every seed, ended at or above the
            chance loss or is far behind the best baseline
            (:mod:`lofw.evaluation.verdicts`).
        out_dir: where the files were written, or None.
    """

    curves: dict[str, np.ndarray]
    summary: dict[str, Any]
    out_dir: Path | None

    def __repr__(self) -> str:  # the summary table, not the curves
        head = (f"EvaluationResult(task={self.summary.get('task')!r}, steps={self.summary.get('steps')}, "
                f"seeds={self.summary.get('seeds')}, out_dir={self.out_dir!r})")
        def num(x):
            return "None" if x is None else f"{x:.4g}"

        rows = [f"  {name}: mean_loss={num(entry.get('mean_loss'))}, final_loss_mean={num(entry.get('final_loss_mean'))}, "
                f"diverged={entry.get('n_diverged')}" for name, entry in self.summary.get("optimizers", {}).items()]
        warnings = [f"  warning: {w}" for w in self.summary.get("warnings", [])]
        return "\n".join([head, *rows, *warnings])


def evaluate(
    run: str | Path | AbstractOptimizer | Source,
    task: str | dict[str, Any] | AbstractTask | None = None,
    *,
    steps: int | None = None,
    seeds: int = 5,
    baselines: Sequence[str] = (),
    out: str | Path | None = None,
    seed: int = 0,
    registry: Registry | None = None,
    lr_grid: Sequence[float] = LR_GRID,
    tune_seeds: int = 2,
    devices: str | int | None = None,
) -> EvaluationResult:
    """Train fresh instances of ``task`` with a (meta-trained) optimizer.

    Args:
        run: any SOURCE of :func:`lofw.resolve_source`: a meta-training run
            folder or grid cell folder (its config and latest checkpoint give
            the optimizer, task and horizon), ``"pretrained:NAME"`` (its card
            gives the task and horizon; nothing is written unless ``out`` is
            given), a recipe name, an :class:`lofw.AbstractOptimizer` (no
            horizon) or a :class:`lofw.Source` (its ``task`` and ``horizon``).
        task: registry name, inline spec or task; default: the source's task
            (required when the source has none).
        steps: inner steps; default 10x the source's horizon
            (:data:`DEFAULT_STEPS` when it has none).
        seeds: independent task instances (initialisation and data order).
        baselines: any of :data:`lofw.evaluation.baselines.BASELINES`, optionally
            ``@N`` or ``@horizon`` (only for a source with a horizon).
        out: where to write ``summary.json`` and ``curves.npz``; default
            ``<run_dir>/eval/<task>-<steps>`` for a source with a run folder,
            nothing written otherwise.
        seed: base seed; evaluation seeds are ``fold_in(seed, i)``.
        registry: registry for names (default the project's).
        lr_grid: learning rates tried by the baselines.
        tune_seeds: seeds used to pick a baseline's learning rate (separate
            from the evaluation seeds).
        devices: split the seeds over a 1-D mesh of these devices (``"all"``
            or a count, :func:`lofw.runtime.distributed.make_mesh`; padded to a
            multiple of the device count); None = one device. Results
            equal one device's up to float rounding.

    Raises:
        ConfigError: unknown task, source or baseline, ``@horizon`` for a
            source without a horizon, ``steps < 1``.
    """
    if int(seeds) < 1 or int(tune_seeds) < 1:
        raise ConfigError(f"evaluate: seeds and tune_seeds must be >= 1, got {seeds}, {tune_seeds}")
    parsed = [parse_baseline(b, where="evaluate") for b in baselines]
    registry = registry if registry is not None else load_registry()
    source = resolve_source(run, registry)
    if any(tune == "horizon" for _, tune in parsed) and source.horizon is None:
        raise ConfigError(
            f"evaluate: {source.label} has no meta-training horizon, so `@horizon` has no meaning; "
            "write NAME@N with N the steps to tune for, or pass lofw.Source(label, optimizer, horizon=H)"
        )
    task_spec = task if task is not None else source.task
    if task_spec is None:
        raise ConfigError(f"evaluate: give a `task` when evaluating {source.label} (it has no meta-training task)")
    task_obj = build_task(task_spec, registry, where="task" if isinstance(task_spec, dict) else None)
    steps = int(steps) if steps is not None else (10 * source.horizon if source.horizon else DEFAULT_STEPS)
    if steps < 1:
        raise ConfigError(f"evaluate: steps must be >= 1, got {steps}")
    if isinstance(task_spec, str):
        label = task_spec
    elif isinstance(task_spec, dict) and isinstance(task_spec.get("name"), str):
        label = task_spec["name"]
    else:
        label = type(task_obj).__name__
    if out is None and source.run_dir is not None:
        out = source.run_dir / "eval" / f"{label}-{steps}"

    eval_keys = seed_keys(seed, seeds)
    tune_keys = seed_keys(seed, tune_seeds, offset=1_000_000)
    mesh = None
    if devices is not None:
        mesh = distributed.make_mesh(devices)
        task_obj = distributed.replicate(task_obj, mesh)

    def seed_curves(optimizer, keys):
        if mesh is None:
            return np.asarray(train_curves(optimizer, task_obj, keys, steps=steps))
        keys, n = distributed.shard_seeds(keys, mesh)
        optimizer = distributed.replicate(optimizer, mesh)
        return np.asarray(distributed.to_host(train_curves(optimizer, task_obj, keys, steps=steps)))[:n]

    def grid_curves(name, lrs, keys, n_steps):
        if mesh is None:
            return np.asarray(baseline_grid_curves(name, lrs, task_obj, keys, steps=n_steps))
        keys, n = distributed.shard_seeds(keys, mesh)
        lrs = distributed.replicate(lrs, mesh)
        return np.asarray(distributed.to_host(baseline_grid_curves(name, lrs, task_obj, keys, steps=n_steps)))[:, :n]

    curves: dict[str, np.ndarray] = {"learned": seed_curves(source.optimizer, eval_keys)}
    summary: dict[str, Any] = {"task": label, "steps": steps, "seeds": int(seeds), "optimizers": {}}
    summary["optimizers"]["learned"] = summarise(curves["learned"], task_obj)
    summary["chance_loss"] = task_obj.chance_loss
    for spec, (name, tune_for) in zip(baselines, parsed):
        tune_steps = min(steps, source.horizon if tune_for == "horizon" else tune_for or steps)
        lrs = jnp.asarray(lr_grid, jnp.float32)
        tune = grid_curves(name, lrs, tune_keys, tune_steps)
        scores = [float(np.mean(normalised(tune[i], task_obj))) for i in range(len(lr_grid))]
        best = int(np.argmin(scores))
        curves[spec] = seed_curves(OptaxBaseline(name, lrs[best]), eval_keys)
        entry = summarise(curves[spec], task_obj)
        entry["tuned_for_steps"] = tune_steps
        entry["lr"] = float(lr_grid[best])
        entry["lr_grid_losses"] = {repr(float(lr)): finite(sc) for lr, sc in zip(lr_grid, scores)}
        summary["optimizers"][spec] = entry
    summary["warnings"] = verdicts(summary)[1]
    out_dir = Path(out) if out is not None else None
    if out_dir is not None and jax.process_index() == 0:
        write_npz(out_dir / "curves.npz", **curves)
        write_json(out_dir / "summary.json", summary, sort_keys=True)
    return EvaluationResult(curves=curves, summary=summary, out_dir=out_dir)
