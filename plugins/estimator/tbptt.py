"""``tbptt``: truncated backpropagation through time (star_spec 3.5).

Per meta-step and particle ``i``: unroll ``T`` steps from the particle's
state with the unperturbed meta-parameters and differentiate the mean
normalised training loss of those steps,

    g_i = d/d theta (1/T) sum_t normalizer(L_t(theta)),

treating the start state as a constant (``stop_gradient``: the truncation
cuts the dependence on earlier steps). Gradients flow through the inner
optimizer's updates, its state and the task parameters inside the
truncation; an episode reset inside it replaces the parameters by fresh
ones that do not depend on ``theta``. Over a whole episode
(``truncation == horizon``, no stagger) this is exactly ``jax.grad`` of the
unrolled meta-loss.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

import lofw
from lofw import EstimatorOutput
from lofw_plugins.estimator.truncated import (
    InnerState,
    checked_schedule,
    fresh_inner_states,
    initial_inner_states,
    resets_at_truncation_end,
    step_keys,
    unroll,
)


class TBPTTState(eqx.Module):
    """``inner``: each particle's inner run (particle axis first)."""

    inner: InnerState


class TBPTT(lofw.AbstractEstimator):
    """Backpropagation through each particle's truncation.

    Args:
        truncation: inner steps per meta-step (the backpropagated length).
        particles: independent inner runs averaged per meta-step.
        horizon: inner steps of an episode.
        stagger: staggered episode starts (as PES).
        schedule: the length of each episode (as PES).
    """

    truncation: int = eqx.field(static=True)
    particles: int = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    stagger: bool = eqx.field(static=True)
    schedule: lofw.AbstractHorizonSchedule | None = eqx.field(static=True)

    def __init__(self, truncation: int = 50, particles: int = 8, horizon: int = 2000, stagger: bool = True,
                 schedule: lofw.AbstractHorizonSchedule | None = None):
        if truncation < 1 or particles < 1:
            raise ValueError(f"need truncation >= 1 and particles >= 1; got {truncation}, {particles}")
        if horizon < truncation:
            raise ValueError(f"horizon ({horizon}) is shorter than the truncation ({truncation})")
        self.truncation, self.particles, self.horizon = int(truncation), int(particles), int(horizon)
        self.stagger = bool(stagger)
        self.schedule = checked_schedule(schedule, self.horizon, self.truncation)

    @property
    def reset_at_end(self) -> bool:
        """Episodes end only at a truncation's last step (``truncated.py`` fast path)."""
        return resets_at_truncation_end(self.horizon, self.truncation)

    def init(self, opt: lofw.AbstractOptimizer, task: lofw.AbstractTask, key: PRNGKeyArray) -> TBPTTState:
        return TBPTTState(initial_inner_states(opt, task, key, self.particles, self.horizon, self.stagger, self.truncation,
                                   self.schedule))

    def particle_gradients(
        self, opt: lofw.AbstractOptimizer, task: lofw.AbstractTask, state: TBPTTState, key: PRNGKeyArray
    ) -> EstimatorOutput:
        theta, static = eqx.partition(opt, eqx.is_inexact_array)
        k_data, k_fresh = jax.random.split(key)
        fresh = fresh_inner_states(opt, task, k_fresh, self.particles, self.schedule, self.horizon, self.truncation)
        keys = step_keys(k_data, self.particles, self.truncation)

        def particle(inner, keys_i, fresh_i):
            inner = jax.lax.stop_gradient(inner)

            def meta_loss(th):
                new, losses, dones = unroll(eqx.combine(th, static), task, inner, keys_i, fresh_i, self.horizon, self.reset_at_end)
                return jnp.mean(losses), (new, losses, dones)

            grad, (new, losses, dones) = jax.grad(meta_loss, has_aux=True)(theta)
            return grad, new, jnp.mean(losses), jnp.any(dones)

        grad, inner, meta_loss, ended = jax.vmap(particle)(state.inner, keys, fresh)
        return EstimatorOutput(grad, TBPTTState(inner), meta_loss, ended.astype(jnp.float32))
