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

A baseline tuned for a shorter run than it is evaluated on is written
``NAME@N`` (the learning rate with the lowest mean normalised loss over the
first ``N`` steps) or ``NAME@horizon`` (``N`` = the meta-training horizon):
``adam@horizon`` is Adam tuned for the horizon a learned optimizer was
meta-trained on, the fair comparison inside that horizon; plain ``adam`` is
tuned for the whole evaluation.

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
import functools
import json
import math
from pathlib import Path
from typing import Any, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from lofw.base_optimizer import AbstractOptimizer
from lofw.errors import ConfigError, choices
from lofw.registry import Registry, load_registry
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
    devices: str | int | None = None,
) -> EvaluationResult:
    """Train fresh instances of ``task`` with a (meta-trained) optimizer.

    Args:
        run: a meta-training run folder (its ``config.json`` and latest
            checkpoint give the optimizer, task and horizon), ``"pretrained:NAME"``
            (a pretrained optimizer, its card gives the task and horizon;
            nothing is written unless ``out`` is given) or an
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
        devices: split the seeds over a 1-D mesh of these devices (``"all"``
            or a count, :func:`lofw.distributed.make_mesh`; padded to a
            multiple of the device count); None = one device. Results
            equal one device's up to float rounding.

    Raises:
        ConfigError: unknown task or baseline, a folder that is not a run,
            ``steps < 1``.
    """
    if int(seeds) < 1 or int(tune_seeds) < 1:
        raise ConfigError(f"evaluate: seeds and tune_seeds must be >= 1, got {seeds}, {tune_seeds}")
    for b in baselines:
        parse_baseline(b, where="evaluate")
    registry = registry if registry is not None else load_registry()
    opt, task_spec, horizon, run_dir = _resolve_run(run, task, registry)
    from lofw.tasks import build_task

    task_obj = build_task(task_spec, registry, where="task" if isinstance(task_spec, dict) else None)
    steps = int(steps) if steps is not None else 10 * horizon
    if steps < 1:
        raise ConfigError(f"evaluate: steps must be >= 1, got {steps}")
    if isinstance(task_spec, str):
        label = task_spec
    elif isinstance(task_spec, dict) and isinstance(task_spec.get("name"), str):
        label = task_spec["name"]
    else:
        label = type(task_obj).__name__
    if out is None and run_dir is not None:
        out = run_dir / "eval" / f"{label}-{steps}"

    base = jax.random.PRNGKey(seed)
    eval_keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(seeds))
    tune_keys = jax.vmap(lambda i: jax.random.fold_in(base, 1_000_000 + i))(jnp.arange(tune_seeds))
    mesh = None
    if devices is not None:
        from lofw import distributed

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

    curves: dict[str, np.ndarray] = {"learned": seed_curves(opt, eval_keys)}
    summary: dict[str, Any] = {"task": label, "steps": steps, "seeds": int(seeds), "optimizers": {}}
    summary["optimizers"]["learned"] = _summarise(curves["learned"], task_obj)
    summary["chance_loss"] = task_obj.chance_loss
    for spec in baselines:
        name, tune_for = parse_baseline(spec)
        tune_steps = min(steps, horizon if tune_for == "horizon" else tune_for or steps)
        lrs = jnp.asarray(lr_grid, jnp.float32)
        tune = grid_curves(name, lrs, tune_keys, tune_steps)
        scores = [float(np.mean(_normalised(tune[i], task_obj))) for i in range(len(lr_grid))]
        best = int(np.argmin(scores))
        curves[spec] = seed_curves(OptaxBaseline(name, lrs[best]), eval_keys)
        entry = _summarise(curves[spec], task_obj)
        entry["tuned_for_steps"] = tune_steps
        entry["lr"] = float(lr_grid[best])
        entry["lr_grid_losses"] = {repr(float(lr)): _finite(sc) for lr, sc in zip(lr_grid, scores)}
        summary["optimizers"][spec] = entry
    out_dir = Path(out) if out is not None else None
    if out_dir is not None and jax.process_index() == 0:
        _save(out_dir, curves, summary)
    return EvaluationResult(curves=curves, summary=summary, out_dir=out_dir)


def parse_baseline(spec: str, where: str = "baseline") -> tuple[str, int | str | None]:
    """``"adam"`` -> ``("adam", None)``, ``"adam@500"`` -> ``("adam", 500)``,
    ``"adam@horizon"`` -> ``("adam", "horizon")``: the optimizer and the number
    of steps its learning rate is tuned for (None: the whole evaluation).

    Raises:
        ConfigError: an unknown optimizer or a tuning length that is neither
            a positive integer nor ``horizon``.
    """
    name, at, tune = str(spec).partition("@")
    valid = f"valid choices: {choices(BASELINES)}, each optionally @N or @horizon (tuned for the first N steps)"
    if name not in BASELINES:
        raise ConfigError(f"{where}: unknown baseline {spec!r}; {valid}")
    if not at:
        return name, None
    if tune == "horizon":
        return name, "horizon"
    if tune.isdigit() and int(tune) > 0:
        return name, int(tune)
    raise ConfigError(f"{where}: bad baseline {spec!r}: the part after @ must be a positive integer or 'horizon'; {valid}")


class OptaxBaseline(AbstractOptimizer):
    """A hand-designed baseline as an :class:`lofw.AbstractOptimizer`.

    ``lr`` is an array field so that a grid of learning rates is one ``vmap``.
    """

    name: str = eqx.field(static=True)
    lr: Float[Array, ""]

    def _tx(self) -> optax.GradientTransformation:
        if self.name == "adam":
            return optax.adam(self.lr)
        return optax.nadamw(self.lr, weight_decay=1e-4)

    def init(self, params):
        return self._tx().init(params)

    def update(self, grads, state, params):
        return self._tx().update(grads, state, params)


def _curves(opt: AbstractOptimizer, task: AbstractTask, keys: Array, *, steps: int) -> Float[Array, "seeds steps"]:
    """Train one fresh task instance per key for ``steps`` steps: raw losses.

    ``vmap`` over the keys of a ``lax.scan`` over the steps; the loss at step
    t is the training loss of the pre-update parameters on that step's batch.
    Non-finite values are kept (and flagged by the caller), never raised.
    """

    def one_seed(key):
        k_init, k_data = jax.random.split(key)
        params = task.init(k_init)

        def body(carry, k):
            params, state = carry
            loss, grads = jax.value_and_grad(task.loss)(params, task.sample_batch(k, "train"))
            updates, state = opt.update(grads, state, params)
            params = jax.tree_util.tree_map(lambda p, u: p + u.astype(p.dtype), params, updates)
            return (params, state), loss

        _, losses = jax.lax.scan(body, (params, opt.init(params)), jax.random.split(k_data, steps))
        return losses

    return jax.vmap(one_seed)(keys)


def _grid_curves(name: str, lrs: Array, task: AbstractTask, keys: Array, *, steps: int) -> Float[Array, "lrs seeds steps"]:
    return jax.vmap(lambda lr: _curves(OptaxBaseline(name, lr), task, keys, steps=steps))(lrs)


@functools.cache
def _compiled(fn):
    # built on first use, not at import: asking for the backend initialises it
    from lofw.meta_train import compiler_options

    return eqx.filter_jit(fn, compiler_options=compiler_options())


def train_curves(opt: AbstractOptimizer, task: AbstractTask, keys: Array, *, steps: int) -> Float[Array, "seeds steps"]:
    """Compiled :func:`_curves`: one fresh run per key, ``[seeds, steps]`` raw losses."""
    return _compiled(_curves)(opt, task, keys, steps=steps)


def baseline_grid_curves(name: str, lrs: Array, task: AbstractTask, keys: Array, *, steps: int) -> Float[Array, "lrs seeds steps"]:
    """:func:`train_curves` of a baseline for every learning rate, in one compiled call."""
    return _compiled(_grid_curves)(name, lrs, task, keys, steps=steps)


def _normalised(curves: np.ndarray, task: AbstractTask) -> np.ndarray:
    return np.asarray(jax.jit(jnp.vectorize(task.normalizer))(jnp.asarray(curves)))


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def _summarise(curves: np.ndarray, task: AbstractTask) -> dict[str, Any]:
    """Per-seed final loss (mean of the last 1% of steps) and the diverged flags."""
    tail = max(1, curves.shape[1] // 100)
    final = curves[:, -tail:].mean(axis=1)
    limit = task.max_meta_loss
    diverged = [bool(not np.all(np.isfinite(c)) or not np.isfinite(f) or f > limit) for c, f in zip(curves, final)]
    ok = [f for f, d in zip(final, diverged) if not d]
    return {
        "final_loss": [_finite(f) for f in final],
        "final_loss_mean": _finite(np.mean(ok)) if ok else None,
        "mean_loss": _finite(np.mean(_normalised(curves, task))),
        "diverged": diverged,
        "n_diverged": int(sum(diverged)),
    }


def _save(out_dir: Path, curves: dict[str, np.ndarray], summary: dict[str, Any]) -> None:
    from lofw.checkpoint import atomic_write_bytes, atomic_write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **{k: v.astype(np.float32) for k, v in curves.items()})
    atomic_write_bytes(out_dir / "curves.npz", buffer.getvalue())
    atomic_write_json(out_dir / "summary.json", summary)


def _resolve_run(run, task, registry: Registry):
    """``(optimizer, task spec, horizon, run folder or None)``; ``run`` is an
    optimizer, a run folder or ``pretrained:NAME`` (:func:`lofw.pretrained.resolve_source`)."""
    if isinstance(run, AbstractOptimizer):
        if task is None:
            raise ConfigError("evaluate: give a `task` when evaluating an optimizer object")
        from lofw.meta_config import MetaTrainConfig

        return run, task, MetaTrainConfig().horizon, None
    from lofw.pretrained import resolve_source

    opt, info = resolve_source(run, registry)
    return opt, (task if task is not None else info["task"]), info["horizon"], info["run_dir"]
