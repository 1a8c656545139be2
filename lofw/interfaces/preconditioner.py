"""The ``preconditioner`` component kind: rescales the blackbox direction."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, Float

from lofw.interfaces.stats import LeafStats


class AbstractPreconditioner(eqx.Module):
    """Maps the network's direction head ``x`` to a preconditioned direction."""

    @abc.abstractmethod
    def apply(self, x: Float[Array, "..."], stats: LeafStats) -> Float[Array, "..."]:
        """Precondition ``x`` (shape ``stats.param.shape``) for one tensor."""
