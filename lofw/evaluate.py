"""``evaluate``: train fresh task instances with an optimizer, past the horizon.

Every seed of one optimizer is trained in ONE compiled call: ``vmap`` over
seeds of a ``lax.scan`` over ``steps`` inner steps. A seed whose loss becomes
NaN/inf, or whose final loss is above the task normaliser's maximum, is
marked diverged; nothing raises.

Baselines, trained in the same way on the same task and seeds:

- ``adam``: optax Adam, its learning rate picked from the half-decade grid
  :data:`LR_GRID` by the lowest mean normalised training loss over
  ``steps`` on separate tuning seeds (the paper's "coarse search, half
  orders of magnitude", Appendix B.3).
- ``nadamw``: optax NAdamW (weight decay 1e-4), learning rate picked from
  the same grid in the same way (the paper tunes it with 1000 random trials;
  this is the affordable stand-in).

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
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lofw.base_optimizer import AbstractOptimizer
from lofw.registry import Registry
from lofw.task import AbstractTask

#: Half-decade learning-rate grid of the Adam / NAdamW baselines.
LR_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
#: Baselines ``evaluate`` knows.
BASELINES: tuple[str, ...] = ("adam", "nadamw")


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` returns.

    Attributes:
        curves: optimizer name (``"learned"``, ``"adam"``, ``"nadamw"``) ->
            ``[seeds, steps]`` training losses.
        summary: the contents of ``summary.json``.
        out_dir: where the files were written, or None.
    """

    curves: dict[str, np.ndarray]
    summary: dict[str, Any]
    out_dir: Path | None


def evaluate(
    run: str | Path | AbstractOptimizer,
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
) -> EvaluationResult:
    """Train fresh instances of ``task`` with a (meta-trained) optimizer.

    Args:
        run: a meta-training run folder (its ``config.json`` and latest
            checkpoint give the optimizer, task and horizon) or an
            :class:`lofw.AbstractOptimizer`.
        task: registry name, inline spec or task; default: the run's task
            (required when ``run`` is an optimizer).
        steps: inner steps; default 10x the run's horizon (20000 for an
            optimizer given directly).
        seeds: independent task instances (initialisation and data order).
        baselines: any of :data:`BASELINES`.
        out: where to write ``summary.json`` and ``curves.npz``; default
            ``<run>/eval/<task>-<steps>`` for a run folder, nothing written
            for an optimizer.
        seed: base seed; evaluation seeds are ``fold_in(seed, i)``.
        registry: registry for names (default the project's).
        lr_grid: learning rates tried by the baselines.
        tune_seeds: seeds used to pick a baseline's learning rate (separate
            from the evaluation seeds).

    Raises:
        ConfigError: unknown task or baseline, a folder that is not a run,
            ``steps < 1``.
    """
    raise NotImplementedError("evaluate: being implemented")
