"""The meta-gradient variance study of Figure 2a (Appendix B.1).

For one noise instantiation ``i`` (an initial iterate ``phi_0`` and the noise
``xi_0 .. xi_T`` of one episode) the meta-gradient is the pathwise gradient

    g_i = d/dP [(1/T) sum_{t=1..T} l_t]

of the unrolled episode, and the figure plots the trace of the empirical
covariance over ``N`` instantiations (eqs. A.32-A.33),

    tr(Sigma_hat) = (1/N) sum_i ||g_i - g_bar||^2,   g_bar = (1/N) sum_i g_i,

against the nominal step size ``alpha`` for ``P = 0``, for each horizon ``T``
of eq. A.31. :func:`meta_gradients` is the plain ``jax.grad`` for one T;
:func:`gradient_variance` gets every T of a list from one episode of the
longest horizon by forward-mode differentiation of the weighted loss sums
(P has only ``n^2`` entries), and agrees with it exactly.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from lofw.nqm.rollout import NoisyQuadratic

#: The horizons of Figure 2a (eq. A.31).
PAPER_HORIZONS = (1, 2, 3, 4, 5, 10, 25, 50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 800, 900, 1000)
#: Figure 2a's number of alphas in ``[0, 2 / lambda_max(H)]`` and of seeds per point.
PAPER_N_ALPHAS = 50
PAPER_N_SEEDS = 500


def meta_gradients(
    nqm: NoisyQuadratic, P: Float[Array, "n n"], alpha: float, T: int, keys: PRNGKeyArray
) -> Float[Array, "N n n"]:
    """``jax.grad`` of the unrolled meta-loss w.r.t. P, one per episode key."""
    grad = jax.grad(lambda P, k: nqm.loss(P, alpha, k, T))
    return jax.vmap(grad, in_axes=(None, 0))(P, keys)


def trace_covariance(grads: Float[Array, "N ..."]) -> Float[Array, ""]:
    """``tr(Sigma_hat)`` of eq. A.32 (the 1/N, biased, estimate) over the leading axis."""
    flat = grads.reshape(grads.shape[0], -1)
    centered = flat - jnp.mean(flat, axis=0)
    return jnp.mean(jnp.sum(centered**2, axis=1))


def horizon_weights(horizons: Sequence[int]) -> np.ndarray:
    """``W[t-1, j] = 1 / T_j`` for ``t <= T_j``: column j turns ``l_1 .. l_Tmax`` into T_j's meta-loss."""
    horizons = np.asarray(horizons, dtype=np.int64)
    if horizons.ndim != 1 or horizons.size == 0 or np.any(horizons < 1):
        raise ValueError(f"horizons must be positive step counts, got {horizons.tolist()}")
    t = np.arange(1, horizons.max() + 1)[:, None]
    return np.where(t <= horizons[None, :], 1.0 / horizons[None, :], 0.0).astype(np.float32)


def gradient_variance(
    nqm: NoisyQuadratic,
    alphas: Sequence[float],
    horizons: Sequence[int] = PAPER_HORIZONS,
    n_seeds: int = PAPER_N_SEEDS,
    key: PRNGKeyArray | None = None,
    P: Float[Array, "n n"] | None = None,
) -> np.ndarray:
    """``tr(Sigma_hat)`` of the meta-gradient for every ``(alpha, T)`` pair.

    Args:
        nqm: the problem (Appendix B.1's by default).
        alphas: nominal step sizes.
        horizons: episode lengths T.
        n_seeds: noise instantiations N per point; each alpha sees the same
            N episodes (common random numbers), and each T the first T steps
            of them.
        key: randomness (default ``PRNGKey(0)``).
        P: the learned preconditioner (default 0, as in Figure 2a).

    Returns:
        An array of shape ``(len(alphas), len(horizons))``.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    n = nqm.dim
    P = jnp.zeros((n, n), jnp.float32) if P is None else jnp.asarray(P, jnp.float32)
    weights = jnp.asarray(horizon_weights(horizons))
    t_max = weights.shape[0]
    episodes = jax.vmap(lambda k: nqm.sample(k, t_max))(jax.random.split(key, n_seeds))

    def grads_one(alpha, phi0, xi):
        jac = jax.jacfwd(lambda P: nqm.losses(P, alpha, phi0, xi, weights))(P)  # (k, n, n)
        return jac.reshape(jac.shape[0], -1)

    @jax.jit
    def variance_at(alpha):
        g = jax.vmap(grads_one, in_axes=(None, 0, 0))(alpha, *episodes)  # (N, k, n*n)
        centered = g - jnp.mean(g, axis=0)
        return jnp.mean(jnp.sum(centered**2, axis=-1), axis=0)  # (k,)

    return np.stack([np.asarray(variance_at(jnp.float32(a))) for a in alphas])
