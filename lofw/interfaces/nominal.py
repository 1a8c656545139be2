"""The ``nominal`` component kind: a hand-designed descent direction."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, Float

from lofw.interfaces.stats import LeafStats


class AbstractNominalTerm(eqx.Module):
    """A descent direction computed from accumulator statistics, no network.

    The learned optimizer subtracts ``b1 * magnitude * direction(stats)``, so
    ``direction`` points uphill like a gradient (``sgd`` returns the gradient).
    """

    @abc.abstractmethod
    def direction(self, stats: LeafStats) -> Float[Array, "..."]:
        """The direction for one tensor, shape ``stats.param.shape``."""
