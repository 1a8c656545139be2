"""Built-in nominal terms (star_spec.md 1.6): no bias correction, eps inside the root."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

import lofw

EPS = 1e-6


class SGD(lofw.AbstractNominalTerm):
    """The raw gradient."""

    def direction(self, stats: lofw.LeafStats):
        return stats.grad


class AggMo(lofw.AbstractNominalTerm):
    """Aggregated momentum: the mean of the momenta."""

    def direction(self, stats: lofw.LeafStats):
        return jnp.mean(stats.momentum, axis=-1)


class Adam(lofw.AbstractNominalTerm):
    """The slowest momentum over ``sqrt(v + 1e-6)``."""

    def direction(self, stats: lofw.LeafStats):
        return stats.momentum[..., -1] * lax.rsqrt(stats.second_moment + EPS)


class AdamAggMo(lofw.AbstractNominalTerm):
    """STAR's nominal term: the mean of the momenta over ``sqrt(v + 1e-6)``."""

    def direction(self, stats: lofw.LeafStats):
        return jnp.mean(stats.momentum, axis=-1) * lax.rsqrt(stats.second_moment + EPS)
