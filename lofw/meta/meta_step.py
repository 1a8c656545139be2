"""The meta-step of a run on one task: estimate, outer update, metrics; ONE compiled function.

``meta_step(state, task) -> (state, metrics)``: the estimate over every
particle and both antithetic branches for the full truncation, non-finite
entries zeroed and counted, then clip + AdamW. The key of the step is
``fold_in(state.key, state.step)``, so the step is a pure function of
``state`` (this is what makes a resumed run bit-identical). A mixture's
meta-step (:mod:`lofw.meta.mixture`) shares :func:`outer_step` and
:func:`diverged_particles` with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Int, PyTree

from lofw.interfaces.estimator import AbstractEstimator
from lofw.interfaces.task import AbstractTask
from lofw.meta.checkpoint import TrainingState
from lofw.meta.outer import make_outer_optimizer, zero_nonfinite
from lofw.runtime.compile import compiler_options


def outer_step(outer: optax.GradientTransformation, state: TrainingState,
               grad: PyTree) -> tuple[PyTree, Any, dict[str, Array]]:
    """Zero the non-finite entries of ``grad``, apply the outer optimizer.

    Returns the new meta-parameters, the new outer state and the metrics
    ``grad_norm`` (before clipping), ``nan_grads`` and ``theta_norm``.
    """
    grad, n_nan = zero_nonfinite(grad)
    updates, outer_state = outer.update(grad, state.outer_state, state.theta)
    theta = optax.apply_updates(state.theta, updates)
    metrics = {"grad_norm": optax.tree.norm(grad), "nan_grads": n_nan, "theta_norm": optax.tree.norm(theta)}
    return theta, outer_state, metrics


def diverged_particles(meta_loss: Array, largest: float) -> Int[Array, ""]:
    """Particles whose truncation sat at the largest meta-loss (non-finite where it is unbounded)."""
    if math.isfinite(largest):
        return jnp.sum(meta_loss >= largest * (1 - 1e-6)).astype(jnp.int32)
    return jnp.sum(~jnp.isfinite(meta_loss)).astype(jnp.int32)


def meta_step_body(estimator: AbstractEstimator, outer: optax.GradientTransformation, static: Any,
                   state: TrainingState, task: AbstractTask) -> tuple[TrainingState, dict[str, Array]]:
    """One meta-step on one task, not compiled: what :func:`make_meta_step` jits
    and a population (:mod:`lofw.meta.population`) vmaps."""
    opt = eqx.combine(state.theta, static)
    key = jax.random.fold_in(state.key, state.step)
    grad, out = estimator.estimate(opt, task, state.estimator_state, key)
    theta, outer_state, update_metrics = outer_step(outer, state, grad)
    metrics = {
        "meta_loss": jnp.mean(out.meta_loss),
        "grad_norm": update_metrics["grad_norm"],
        "nan_grads": update_metrics["nan_grads"],
        "resets": jnp.sum(out.resets).astype(jnp.int32),
        "diverged": diverged_particles(out.meta_loss, task.max_meta_loss),
        "theta_norm": update_metrics["theta_norm"],
    }
    return TrainingState(theta, outer_state, out.state, state.key, state.step + 1), metrics


def make_meta_step(estimator: AbstractEstimator, outer: optax.GradientTransformation, static: Any) -> Callable:
    """The whole meta-step on one task as ONE compiled function (module docstring)."""

    @eqx.filter_jit(compiler_options=compiler_options())
    def meta_step(state: TrainingState, task: AbstractTask):
        return meta_step_body(estimator, outer, static, state, task)

    return meta_step


_META_STEPS: dict[Any, Callable] = {}


def cached_meta_step(estimator: AbstractEstimator, outer_config: Any, static: Any) -> Callable:
    """:func:`make_meta_step` memoised on its configuration, so that runs of
    one configuration in one process (a resumed run, a grid's seeds) share
    one compiled function instead of compiling it again."""
    try:
        key = (estimator, outer_config, static)
        hash(key)
    except TypeError:
        return make_meta_step(estimator, make_outer_optimizer(outer_config), static)
    if key not in _META_STEPS:
        _META_STEPS[key] = make_meta_step(estimator, make_outer_optimizer(outer_config), static)
    return _META_STEPS[key]
