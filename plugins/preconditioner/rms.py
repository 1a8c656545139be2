"""Built-in preconditioners of the blackbox direction."""

from __future__ import annotations

import equinox as eqx
from jax import lax

import lofw


class RMS(lofw.AbstractPreconditioner):
    """Adam-style ``x / sqrt(v + eps)`` with the second-moment EMA ``v``."""

    eps: float = eqx.field(static=True, default=1e-6)

    def apply(self, x, stats: lofw.LeafStats):
        return x * lax.rsqrt(stats.second_moment + self.eps)


class Identity(lofw.AbstractPreconditioner):
    """No preconditioning."""

    def apply(self, x, stats: lofw.LeafStats):
        return x
