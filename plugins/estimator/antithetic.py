"""Settings shared by the antithetic estimators (``pes``, ``es``)."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray, PyTree

import lofw
from lofw_plugins.estimator.truncated import (
    InnerState,
    checked_schedule,
    fresh_inner_states,
    perturbed,
    resets_at_truncation_end,
    sample_perturbations,
    step_keys,
    unroll,
)

#: Antithetic signs; axis 0 of a particle's branch-stacked values.
SIGNS = jnp.array([1.0, -1.0], jnp.float32)


class AbstractAntithetic(lofw.AbstractEstimator):
    """An estimator of antithetic pairs ``theta +- eps``, ``eps ~ N(0, std^2 I)``.

    Args:
        truncation: inner steps per meta-step ``T``.
        particles: antithetic pairs per meta-step.
        horizon: inner steps of an episode.
        std: perturbation standard deviation ``sigma``.
        stagger: start particle ``i`` at a random episode step in
            ``[0, horizon)`` so that resets are spread out (default True);
            a multiple of ``truncation`` when ``horizon`` is one (then resets
            happen only between truncations: ``truncated.py``'s fast path).
    """

    truncation: int = eqx.field(static=True)
    particles: int = eqx.field(static=True)
    horizon: int = eqx.field(static=True)
    std: float = eqx.field(static=True)
    stagger: bool = eqx.field(static=True)
    schedule: lofw.AbstractHorizonSchedule | None = eqx.field(static=True)

    @property
    def unrolls_per_particle(self) -> int:
        """The + and - branch of each pair."""
        return 2

    def __init__(self, truncation: int = 50, particles: int = 8, horizon: int = 2000, std: float = 0.01,
                 stagger: bool = True, schedule: lofw.AbstractHorizonSchedule | None = None):
        if truncation < 1 or particles < 1 or std <= 0:
            raise ValueError(f"need truncation >= 1, particles >= 1, std > 0; got {truncation}, {particles}, {std}")
        if horizon < truncation:
            raise ValueError(f"horizon ({horizon}) is shorter than the truncation ({truncation})")
        self.truncation, self.particles, self.horizon = int(truncation), int(particles), int(horizon)
        self.std, self.stagger = float(std), bool(stagger)
        self.schedule = checked_schedule(schedule, self.horizon, self.truncation)

    @property
    def reset_at_end(self) -> bool:
        """Episodes end only at a truncation's last step (``truncated.py`` fast path)."""
        return resets_at_truncation_end(self.horizon, self.truncation)

    def draw(
        self, opt: lofw.AbstractOptimizer, task: lofw.AbstractTask, key: PRNGKeyArray
    ) -> tuple[PyTree, InnerState, jax.Array]:
        """One meta-step's randomness, particle axis first: the perturbations
        ``eps``, fresh inner states (for episodes that end) and step keys."""
        theta = eqx.filter(opt, eqx.is_inexact_array)
        k_eps, k_data, k_fresh = jax.random.split(key, 3)
        eps = sample_perturbations(theta, k_eps, self.particles, self.std)
        fresh = fresh_inner_states(opt, task, k_fresh, self.particles, self.schedule, self.horizon, self.truncation)
        return eps, fresh, step_keys(k_data, self.particles, self.truncation)

    def branch(self, opt: lofw.AbstractOptimizer, task: lofw.AbstractTask) -> Callable:
        """``branch(sign, eps_i, inner, keys_i, fresh_i)``: one particle's
        unroll of the truncation with ``theta + sign * eps_i``."""
        theta, static = eqx.partition(opt, eqx.is_inexact_array)

        def run(sign, eps_i, inner, keys_i, fresh_i):
            opt_b = eqx.combine(perturbed(theta, eps_i, sign), static)
            return unroll(opt_b, task, inner, keys_i, fresh_i, self.horizon, self.reset_at_end)

        return run
