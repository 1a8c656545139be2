"""Truncated unrolls of an inner task, shared by every estimator.

One inner step of a particle (star_spec 3.2, with the reset folded into the
step instead of a separate masked reset step)::

    batch       = task.sample_batch(k_t, "train")           # on device
    loss, grads = value_and_grad(task.loss)(params, batch)  # pre-update params
    updates, s  = opt.update(grads, opt_state, params)
    params      = params + updates
    step        = step + 1
    done        = step >= horizon                           # last step of the episode
    if done: params, opt_state, step = fresh params, opt.init(fresh), 0
    meta-loss_t = task.normalizer(loss)

So an episode is exactly ``horizon`` training steps, every step of a
truncation contributes to the meta-loss (nothing is masked), and ``done_t``
flags the *last* step of an episode: steps after it in the same truncation
belong to the next episode. A particle with ``horizon >= truncation`` ends
at most one episode per truncation, so the fresh state it may need is drawn
once per truncation (:func:`fresh_inner_states`) and selected where
``done``; the draw does not depend on the meta-parameters.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from lofw.base_optimizer import AbstractOptimizer
from lofw.task import AbstractTask


class InnerState(eqx.Module):
    """One particle's inner run.

    Attributes:
        params: the task parameters.
        opt_state: the optimizer's state.
        step: training steps done in the current episode (in ``[0, horizon)``).
    """

    params: PyTree
    opt_state: Any
    step: Int[Array, ""]


def fresh_inner_state(opt: AbstractOptimizer, task: AbstractTask, key: PRNGKeyArray) -> InnerState:
    """Fresh task parameters, a fresh optimizer state, episode step 0."""
    params = task.init(key)
    return InnerState(params=params, opt_state=opt.init(params), step=jnp.zeros((), jnp.int32))


def fresh_inner_states(
    opt: AbstractOptimizer, task: AbstractTask, key: PRNGKeyArray, particles: int
) -> InnerState:
    """``particles`` fresh states, stacked on a leading particle axis."""
    return jax.vmap(fresh_inner_state, in_axes=(None, None, 0))(opt, task, jax.random.split(key, particles))


def initial_inner_states(
    opt: AbstractOptimizer,
    task: AbstractTask,
    key: PRNGKeyArray,
    particles: int,
    horizon: int,
    stagger: bool,
) -> InnerState:
    """Fresh states for every particle, with staggered episode counters.

    With ``stagger``, particle ``i`` starts at episode step ``u_i ~ U{0, ...,
    horizon - 1}`` (only the counter: parameters and optimizer state are
    fresh, so its first episode is shorter), so that the particles' resets
    are spread over the horizon (star_spec 3.2, ``random_initial_iteration_offset``).
    """
    k_init, k_offset = jax.random.split(key)
    states = fresh_inner_states(opt, task, k_init, particles)
    if stagger:
        offsets = jax.random.randint(k_offset, (particles,), 0, horizon, dtype=jnp.int32)
        states = eqx.tree_at(lambda s: s.step, states, offsets)
    return states


def _select(done: Bool[Array, ""], fresh: PyTree, current: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda f, c: jnp.where(done, f, c), fresh, current)


def inner_step(
    opt: AbstractOptimizer,
    task: AbstractTask,
    state: InnerState,
    key: PRNGKeyArray,
    fresh: InnerState,
    horizon: int,
) -> tuple[InnerState, Float[Array, ""], Bool[Array, ""]]:
    """One training step (module docstring): ``(next_state, meta_loss, done)``."""
    batch = task.sample_batch(key, "train")
    loss, grads = jax.value_and_grad(task.loss)(state.params, batch)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = jax.tree_util.tree_map(lambda p, u: p + u.astype(p.dtype), state.params, updates)
    step = state.step + 1
    done = step >= horizon
    params = _select(done, fresh.params, params)
    opt_state = _select(done, fresh.opt_state, opt_state)
    step = jnp.where(done, 0, step)
    return InnerState(params, opt_state, step), task.normalizer(loss), done


def unroll(
    opt: AbstractOptimizer,
    task: AbstractTask,
    state: InnerState,
    keys: PRNGKeyArray,
    fresh: InnerState,
    horizon: int,
) -> tuple[InnerState, Float[Array, " T"], Bool[Array, " T"]]:
    """``len(keys)`` inner steps with ``lax.scan``: final state, meta-losses, dones."""

    def body(s, k):
        s, meta_loss, done = inner_step(opt, task, s, k, fresh, horizon)
        return s, (meta_loss, done)

    state, (meta_losses, dones) = jax.lax.scan(body, state, keys)
    return state, meta_losses, dones


def step_keys(key: PRNGKeyArray, particles: int, truncation: int) -> PRNGKeyArray:
    """Per-particle, per-step data keys: shape ``(particles, truncation, 2)``."""
    return jax.vmap(lambda k: jax.random.split(k, truncation))(jax.random.split(key, particles))


def sample_perturbations(theta: PyTree, key: PRNGKeyArray, particles: int, std: float) -> PyTree:
    """``eps ~ N(0, std^2 I)`` per particle, shaped like ``theta`` with a leading particle axis.

    ``theta`` holds arrays and None (the output of ``eqx.filter``); None stays None.
    """
    leaves, treedef = jax.tree_util.tree_flatten(theta)
    keys = jax.random.split(key, max(len(leaves), 1))
    eps = [std * jax.random.normal(k, (particles,) + x.shape, x.dtype) for k, x in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, eps)


def perturbed(theta: PyTree, eps: PyTree, sign: Float[Array, ""] | float) -> PyTree:
    """``theta + sign * eps`` leaf by leaf."""
    return jax.tree_util.tree_map(lambda t, e: t + sign * e, theta, eps)
