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

Fast path: when ``horizon`` is a multiple of ``truncation``, particles are
staggered by multiples of the truncation (``horizon / truncation`` phases,
40 for the paper's 2000 / 50), so an episode can only end at the last step
of a truncation, and :func:`unroll` applies the reset once after the scan
instead of selecting between the fresh and the current state (parameters
and every accumulator) at every step. Results are identical to the per-step
reset for such starts (``tests/test_estimators.py``).

Task families and horizon schedules: each episode draws its task's
configuration (:func:`lofw.interfaces.task.draw_config`, kept in
``InnerState.config`` and applied with ``task.configured``) and, with a
non-constant schedule, its own length (``InnerState.length``) when it
starts. Both are None for a plain task and a constant horizon, so such an
inner state has exactly the leaves it always had (and old checkpoints load).
A schedule keeps every length a multiple of the truncation on the fast path.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from lofw import AbstractHorizonSchedule, AbstractOptimizer, AbstractTask, draw_config


class InnerState(eqx.Module):
    """One particle's inner run.

    Attributes:
        params: the task parameters.
        opt_state: the optimizer's state.
        step: training steps done in the current episode (in ``[0, length)``).
        config: the episode's task configuration (None for a plain task).
        length: the episode's length (None: the estimator's ``horizon``).
    """

    params: PyTree
    opt_state: Any
    step: Int[Array, ""]
    config: PyTree = None
    length: Int[Array, ""] | None = None


#: ``fold_in`` data of an episode's length key, drawn from its init key.
LENGTH_STREAM = 0x1E7


def fresh_inner_state(
    opt: AbstractOptimizer,
    task: AbstractTask,
    key: PRNGKeyArray,
    schedule: AbstractHorizonSchedule | None = None,
    horizon: int = 0,
    truncation: int = 1,
) -> InnerState:
    """A fresh episode: its task configuration, parameters, optimizer state,
    length (from ``schedule``; None without one) and step 0."""
    config = draw_config(task, key)
    params = task.configured(config).init(key)
    length = None
    if schedule is not None:
        length = schedule.sample(jax.random.fold_in(key, LENGTH_STREAM), horizon, truncation)
    return InnerState(params=params, opt_state=opt.init(params), step=jnp.zeros((), jnp.int32),
                      config=config, length=length)


def fresh_inner_states(
    opt: AbstractOptimizer,
    task: AbstractTask,
    key: PRNGKeyArray,
    particles: int,
    schedule: AbstractHorizonSchedule | None = None,
    horizon: int = 0,
    truncation: int = 1,
) -> InnerState:
    """``particles`` fresh states, stacked on a leading particle axis."""
    return jax.vmap(fresh_inner_state, in_axes=(None, None, 0, None, None, None))(
        opt, task, jax.random.split(key, particles), schedule, horizon, truncation)


def initial_inner_states(
    opt: AbstractOptimizer,
    task: AbstractTask,
    key: PRNGKeyArray,
    particles: int,
    horizon: int,
    stagger: bool,
    truncation: int = 1,
    schedule: AbstractHorizonSchedule | None = None,
) -> InnerState:
    """Fresh states for every particle, with staggered episode counters.

    With ``stagger``, particle ``i`` starts at episode step ``u_i`` in
    ``[0, horizon)`` (only the counter: parameters and optimizer state are
    fresh, so its first episode is shorter), so that the particles' resets
    are spread over the horizon (star_spec 3.2, ``random_initial_iteration_offset``).
    ``u_i`` is uniform over ``{0, ..., horizon - 1}``, or over the multiples
    of ``truncation`` when :func:`resets_at_truncation_end` (module docstring);
    with a schedule, over the same values below the particle's own episode length.
    """
    k_init, k_offset = jax.random.split(key)
    states = fresh_inner_states(opt, task, k_init, particles, schedule, horizon, truncation)
    if stagger:
        grid = truncation if resets_at_truncation_end(horizon, truncation) else 1
        top = horizon if states.length is None else states.length
        offsets = jax.random.randint(k_offset, (particles,), 0, top // grid, dtype=jnp.int32) * grid
        states = eqx.tree_at(lambda s: s.step, states, offsets)
    return states


def checked_schedule(
    schedule: AbstractHorizonSchedule | None, horizon: int, truncation: int
) -> AbstractHorizonSchedule | None:
    """``schedule`` after its ``check`` (``ValueError`` when it cannot run with this horizon and truncation)."""
    if schedule is not None:
        schedule.check(horizon, truncation)
    return schedule


def resets_at_truncation_end(horizon: int, truncation: int) -> bool:
    """True when episodes can only end at a truncation's last step (the fast path)."""
    return horizon % truncation == 0


def _select(done: Bool[Array, ""], fresh: PyTree, current: PyTree) -> PyTree:
    return jax.tree_util.tree_map(lambda f, c: jnp.where(done, f, c), fresh, current)


def inner_step(
    opt: AbstractOptimizer,
    task: AbstractTask,
    state: InnerState,
    key: PRNGKeyArray,
    fresh: InnerState | None,
    horizon: int,
) -> tuple[InnerState, Float[Array, ""], Bool[Array, ""]]:
    """One training step (module docstring): ``(next_state, meta_loss, done)``.

    With ``fresh=None`` the step does not reset (the caller does, see :func:`unroll`).
    """
    task = task.configured(state.config)
    batch = task.sample_batch(key, "train")
    loss, grads = jax.value_and_grad(task.loss)(state.params, batch)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = jax.tree_util.tree_map(lambda p, u: p + u.astype(p.dtype), state.params, updates)
    step = state.step + 1
    done = step >= (horizon if state.length is None else state.length)
    new_state = InnerState(params, opt_state, step, state.config, state.length)
    if fresh is not None:
        new_state = reset_where(done, fresh, new_state)
    return new_state, task.normalizer(loss), done


def reset_where(done: Bool[Array, ""], fresh: InnerState, state: InnerState) -> InnerState:
    """``fresh`` (with step 0) where ``done``, else ``state``."""
    return InnerState(
        params=_select(done, fresh.params, state.params),
        opt_state=_select(done, fresh.opt_state, state.opt_state),
        step=jnp.where(done, 0, state.step),
        config=_select(done, fresh.config, state.config),
        length=_select(done, fresh.length, state.length),
    )


def unroll(
    opt: AbstractOptimizer,
    task: AbstractTask,
    state: InnerState,
    keys: PRNGKeyArray,
    fresh: InnerState,
    horizon: int,
    reset_at_end: bool = False,
) -> tuple[InnerState, Float[Array, " T"], Bool[Array, " T"]]:
    """``len(keys)`` inner steps with ``lax.scan``: final state, meta-losses, dones.

    ``reset_at_end``: the caller guarantees that an episode can only end at
    the last step (module docstring); the reset is then applied once, after
    the scan.
    """

    def body(s, k):
        s, meta_loss, done = inner_step(opt, task, s, k, None if reset_at_end else fresh, horizon)
        return s, (meta_loss, done)

    state, (meta_losses, dones) = jax.lax.scan(body, state, keys)
    if reset_at_end:
        state = reset_where(dones[-1], fresh, state)
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
