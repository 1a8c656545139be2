"""Per-tensor statistics handed to nominal terms, preconditioners and magnitudes."""

from __future__ import annotations

import equinox as eqx
from jaxtyping import Array, Float, Int


class LeafStats(eqx.Module):
    """Accumulator statistics of one parameter tensor after this step's update.

    Attributes:
        grad: the raw gradient, shape ``param.shape``.
        param: the parameter value before the update, shape ``param.shape``.
        momentum: gradient EMAs, shape ``param.shape + (n_momenta,)``, decays
            ascending, so ``momentum[..., -1]`` is the slowest (0.999 in STAR).
            No bias correction.
        second_moment: EMA of ``grad**2``, shape ``param.shape``. No bias
            correction.
        step: number of updates done before this one (0 at the first update).
        second_moment_decay: the decay ``beta2`` of ``second_moment`` used at
            this step (a scalar; meta-learned by the ``adafactor`` features),
            or None when the features component does not state it. A
            component that needs it (e.g. a bias correction
            ``v / (1 - beta2**(step + 1))``) raises when it is None.
    """

    grad: Float[Array, "..."]
    param: Float[Array, "..."]
    momentum: Float[Array, "... n_momenta"]
    second_moment: Float[Array, "..."]
    step: Int[Array, ""]
    second_moment_decay: Float[Array, ""] | None = None
