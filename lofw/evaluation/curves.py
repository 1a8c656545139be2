"""The evaluation kernel: train fresh task instances with an optimizer, and summarise the losses.

Every seed of one optimizer is trained in ONE compiled call: ``vmap`` over
seeds of a ``lax.scan`` over the inner steps. Non-finite losses are kept and
flagged (:func:`summarise`), never raised. :func:`lofw.evaluate`,
:mod:`lofw.evaluation.generalize` and :mod:`lofw.evaluation.nadamw_search` all train through here.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from lofw.evaluation.baselines import OptaxBaseline
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.interfaces.task import AbstractTask, draw_config
from lofw.runtime.compile import compiled


def loss_curves(opt: AbstractOptimizer, task: AbstractTask, keys: Array, *, steps: int) -> Float[Array, "seeds steps"]:
    """Train one fresh task instance per key for ``steps`` steps: raw losses (not compiled; trace it).

    ``vmap`` over the keys of a ``lax.scan`` over the steps; the loss at step
    t is the training loss of the pre-update parameters on that step's batch.
    A task family draws each run's member from its init key, as meta-training
    draws each episode's (:func:`lofw.interfaces.task.draw_config`).
    """
    family = task

    def one_seed(key):
        k_init, k_data = jax.random.split(key)
        task = family.configured(draw_config(family, k_init))
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
    return jax.vmap(lambda lr: loss_curves(OptaxBaseline(name, lr), task, keys, steps=steps))(lrs)


def train_curves(opt: AbstractOptimizer, task: AbstractTask, keys: Array, *, steps: int) -> Float[Array, "seeds steps"]:
    """Compiled :func:`loss_curves`: one fresh run per key, ``[seeds, steps]`` raw losses."""
    return compiled(loss_curves)(opt, task, keys, steps=steps)


def baseline_grid_curves(name: str, lrs: Array, task: AbstractTask, keys: Array, *, steps: int) -> Float[Array, "lrs seeds steps"]:
    """:func:`train_curves` of a baseline for every learning rate, in one compiled call."""
    return compiled(_grid_curves)(name, lrs, task, keys, steps=steps)


def normalised(curves: np.ndarray, task: AbstractTask) -> np.ndarray:
    """``task.normalizer`` of every loss (the meta-objective's measure, finite even for a diverged run)."""
    return np.asarray(jax.jit(jnp.vectorize(task.normalizer))(jnp.asarray(curves)))


def finite(x: float) -> float | None:
    """``x`` as a float, or None when it is NaN or infinite (for JSON)."""
    return float(x) if math.isfinite(float(x)) else None


def summarise(curves: np.ndarray, task: AbstractTask) -> dict[str, Any]:
    """Per-seed final loss (mean of the last 1% of steps), mean normalised loss and the diverged flags.

    A seed has diverged when a loss is non-finite or its final loss is above
    the task normaliser's maximum (``task.max_meta_loss``).
    """
    tail = max(1, curves.shape[1] // 100)
    final = curves[:, -tail:].mean(axis=1)
    limit = task.max_meta_loss
    diverged = [bool(not np.all(np.isfinite(c)) or not np.isfinite(f) or f > limit) for c, f in zip(curves, final)]
    ok = [f for f, d in zip(final, diverged) if not d]
    return {
        "final_loss": [finite(f) for f in final],
        "final_loss_mean": finite(np.mean(ok)) if ok else None,
        "mean_loss": finite(np.mean(normalised(curves, task))),
        "diverged": diverged,
        "n_diverged": int(sum(diverged)),
    }


def seed_keys(seed: int, n: int, offset: int = 0) -> Array:
    """``n`` keys ``fold_in(PRNGKey(seed), offset + i)``: the task instances of an evaluation."""
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, offset + i))(jnp.arange(n))
