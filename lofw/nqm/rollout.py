"""Sampled episodes of the noisy quadratic model, as pure JAX functions of P.

An episode draws ``phi_0 ~ N(0, C_0)`` and ``xi_0 .. xi_T ~ N(0, Sigma_xi)``,
runs ``T`` updates ``phi_{t+1} = phi_t - M H (phi_t - xi_t)`` with
``M = alpha I + P`` (eq. 6) or ``M = H^-1/2 (alpha I + P)`` (eq. 12), and
scores ``l_t = 1/2 (phi_t - xi_t)^T H (phi_t - xi_t)`` at ``t = 1 .. T``: the
same indexing as :func:`lofw.nqm.expected_loss`, whose value is the mean of
:meth:`NoisyQuadratic.loss` over episodes. The meta-loss of one episode is
``(1/T) sum_t l_t`` (eq. 3 with ``w_t = 1/T``).

Everything is jit-able, vmap-able and differentiable in P, so a pathwise
meta-gradient is ``jax.grad`` of :meth:`NoisyQuadratic.loss`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from numpy.typing import ArrayLike

from lofw.nqm.dynamics import PAPER_HESSIAN, check_hessian, sqrtm_spd
from lofw.nqm.loss import covariance


def _root(cov: np.ndarray) -> np.ndarray:
    """A square root ``R`` with ``R R^T = cov`` (symmetric, so PSD covariances work)."""
    lam, V = np.linalg.eigh(cov)
    return (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T


class NoisyQuadratic(eqx.Module):
    """The NQM of section 4 with its noise model (defaults: Appendix B.1).

    Attributes:
        hessian: ``H``, symmetric positive definite.
        noise_root: ``R`` with ``R R^T = Sigma_xi``.
        init_root: ``R`` with ``R R^T = C_0``, the covariance of ``phi_0``.
        inv_sqrt_hessian: ``H^-1/2`` (used with ``precondition``).
        precondition: use the preconditioned dynamics of eq. 12.
    """

    hessian: Float[Array, "n n"]
    noise_root: Float[Array, "n n"]
    init_root: Float[Array, "n n"]
    inv_sqrt_hessian: Float[Array, "n n"]
    precondition: bool = eqx.field(static=True)

    def __init__(
        self,
        hessian: ArrayLike = PAPER_HESSIAN,
        noise_cov: ArrayLike = 1.0,
        init_cov: ArrayLike = 10.0,
        precondition: bool = False,
    ):
        H = check_hessian(hessian)
        n = H.shape[0]
        self.hessian = jnp.asarray(H, jnp.float32)
        self.noise_root = jnp.asarray(_root(covariance(noise_cov, n, "noise_cov")), jnp.float32)
        self.init_root = jnp.asarray(_root(covariance(init_cov, n, "init_cov")), jnp.float32)
        self.inv_sqrt_hessian = jnp.asarray(sqrtm_spd(H, -0.5), jnp.float32)
        self.precondition = bool(precondition)

    @property
    def dim(self) -> int:
        """The number of parameters ``n``."""
        return self.hessian.shape[0]

    def sample(self, key: PRNGKeyArray, T: int) -> tuple[Float[Array, " n"], Float[Array, "T+1 n"]]:
        """``(phi_0, xi)`` of one episode of ``T`` updates; ``xi`` has ``T + 1`` rows."""
        z = jax.random.normal(key, (T + 2, self.dim))  # one draw: cheaper to compile than several
        return self.init_root @ z[0], z[1:] @ self.noise_root.T

    def step_matrix(self, P: Float[Array, "n n"], alpha: float | Array) -> Float[Array, "n n"]:
        """``M`` in ``phi <- phi - M grad``: ``alpha I + P``, or ``H^-1/2 (alpha I + P)``."""
        M = alpha * jnp.eye(self.dim, dtype=P.dtype) + P
        return self.inv_sqrt_hessian @ M if self.precondition else M

    def losses(
        self,
        P: Float[Array, "n n"],
        alpha: float | Array,
        phi0: Float[Array, " n"],
        xi: Float[Array, "T+1 n"],
        weights: Float[Array, "T k"] | None = None,
    ) -> Float[Array, " T"] | Float[Array, " k"]:
        """The per-step losses ``l_1 .. l_T`` of the episode ``(phi0, xi)``.

        With ``weights`` (one column per output) the scan returns
        ``weights^T [l_1 .. l_T]`` instead, accumulated in its carry (no
        per-step outputs are stored: forward-mode derivatives of many horizons
        at once stay cheap).
        """
        M = self.step_matrix(P, alpha)
        H = self.hessian

        def body(carry, inputs):
            phi, acc = carry
            xi_now, xi_next, w = inputs
            phi = phi - M @ (H @ (phi - xi_now))
            r = phi - xi_next
            loss = 0.5 * r @ (H @ r)
            if w is None:
                return (phi, acc), loss
            return (phi, acc + w * loss), None

        if weights is None:
            _, out = jax.lax.scan(body, (phi0, jnp.zeros(())), (xi[:-1], xi[1:], None))
            return out
        k = weights.shape[1]
        (_, acc), _ = jax.lax.scan(body, (phi0, jnp.zeros((k,), phi0.dtype)), (xi[:-1], xi[1:], weights))
        return acc

    def loss(self, P: Float[Array, "n n"], alpha: float | Array, key: PRNGKeyArray, T: int) -> Float[Array, ""]:
        """The meta-loss ``(1/T) sum_{t=1..T} l_t`` of one sampled episode."""
        phi0, xi = self.sample(key, T)
        return jnp.mean(self.losses(P, alpha, phi0, xi))
