"""Meta-learned EMA decays, parameterised as offsets in log(1 - beta) space.

``beta(theta) = 1 - (1 - beta_init) * exp(10 * theta)`` (star_spec.md 1.2), so
``theta = 0`` gives the initial decay and weight decay on the meta-parameters
pulls the decays back to it. A perturbation of 0.01 changes ``1 - beta`` by
about 10%.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

OFFSET_SCALE = 10.0


def decay_from_offset(
    beta_init: tuple[float, ...], offset: Float[Array, " n"], clip: bool
) -> Float[Array, " n"]:
    """Effective decays; ``clip`` keeps them in [0, 1] (the reference clips
    the second-moment and factored decays, not the momenta)."""
    beta = 1.0 - (1.0 - jnp.asarray(beta_init, jnp.float32)) * jnp.exp(OFFSET_SCALE * offset)
    return jnp.clip(beta, 0.0, 1.0) if clip else beta
