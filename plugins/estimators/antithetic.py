"""Settings shared by the antithetic estimators (``pes``, ``es``)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

import lofw
from lofw_plugins.estimators.truncated import resets_at_truncation_end

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

    def __init__(self, truncation: int = 50, particles: int = 8, horizon: int = 2000, std: float = 0.01, stagger: bool = True):
        if truncation < 1 or particles < 1 or std <= 0:
            raise ValueError(f"need truncation >= 1, particles >= 1, std > 0; got {truncation}, {particles}, {std}")
        if horizon < truncation:
            raise ValueError(f"horizon ({horizon}) is shorter than the truncation ({truncation})")
        self.truncation, self.particles, self.horizon = int(truncation), int(particles), int(horizon)
        self.std, self.stagger = float(std), bool(stagger)

    @property
    def reset_at_end(self) -> bool:
        """Episodes end only at a truncation's last step (``truncated.py`` fast path)."""
        return resets_at_truncation_end(self.horizon, self.truncation)
