"""The ``dense_preconditioner`` optimizer: the learned linear optimizer of the
paper's section 4,

    phi <- phi - (alpha grad + P grad)      (eq. 5 with the nominal term g = alpha grad)

with a dense meta-learned ``P`` over all parameters (flattened, in
``jax.flatten_util.ravel_pytree`` order) and a fixed nominal step ``alpha``.
On the ``nqm`` task its iterates follow eq. 6, ``A = I - (alpha I + P) H``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int, PRNGKeyArray

import lofw
from lofw import Params


class DensePreconditionerState(eqx.Module):
    """State of :class:`DensePreconditioner`: the number of updates done."""

    step: Int[Array, ""]


class DensePreconditioner(lofw.AbstractOptimizer):
    """``update = -(alpha I + P) grad``; P (``dim x dim``) is the meta-parameter.

    Args:
        dim: the total number of parameters it updates.
        alpha: the nominal step size (static, not meta-learned).
        P: the initial P (default: zeros, or Gaussian with ``init_std``).
        init_std: standard deviation of a random initial P (needs ``key``).
        key: PRNG key for the random initial P (supplied by the builder).
    """

    P: Float[Array, "n n"]
    alpha: float = eqx.field(static=True)

    def __init__(
        self,
        dim: int = 2,
        alpha: float = 0.0,
        P: list[list[float]] | None = None,
        init_std: float = 0.0,
        key: PRNGKeyArray | None = None,
    ):
        dim = int(dim)
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        if P is not None:
            P = jnp.asarray(P, jnp.float32)
            if P.shape != (dim, dim):
                raise ValueError(f"P must be {dim}x{dim} (dim={dim}), got shape {P.shape}")
        elif init_std > 0:
            key = jax.random.PRNGKey(0) if key is None else key
            P = init_std * jax.random.normal(key, (dim, dim), jnp.float32)
        else:
            P = jnp.zeros((dim, dim), jnp.float32)
        if not bool(jnp.all(jnp.isfinite(P))):
            raise ValueError("P must be finite")
        self.P = P
        self.alpha = float(alpha)

    @property
    def dim(self) -> int:
        """The number of parameters it updates."""
        return self.P.shape[0]

    def init(self, params: Params) -> DensePreconditionerState:
        """The step counter; the state holds nothing per parameter.

        A tree without arrays is not checked against ``dim``: it is what
        ``optax.tree_utils.tree_map_params`` passes to find the parameters'
        copies in a state (here none, so it leaves the state alone).
        """
        if jax.tree_util.tree_leaves(params):
            self._flat(params, "params")
        return DensePreconditionerState(step=jnp.zeros((), jnp.int32))

    def update(self, grads: Params, state: DensePreconditionerState, params: Params):
        """``updates = -(alpha g + P g)``, in the structure of ``grads``."""
        g, unravel = self._flat(grads, "grads")
        step = -(self.alpha * g + self.P.astype(g.dtype) @ g)
        return unravel(step), DensePreconditionerState(step=state.step + 1)

    def _flat(self, tree: Params, what: str):
        flat, unravel = ravel_pytree(tree)
        if flat.shape != (self.dim,):
            raise ValueError(
                f"dense_preconditioner has dim={self.dim} but the {what} have {flat.size} entries; "
                f"build it with dim={flat.size}"
            )
        return flat, unravel
