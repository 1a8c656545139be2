"""The exact expected meta-loss of the noisy quadratic model (eqs. 7-8).

The loss at step t is ``l_t = 1/2 (phi_t - xi_t)^T H (phi_t - xi_t)`` (eq. 4)
with ``xi_t ~ N(0, Sigma_xi)`` drawn afresh each step, and the iterates follow
``phi_{t+1} = A phi_t + (I - A) xi_t`` (eq. 6 or, preconditioned, eq. 12).
``phi_t`` depends on ``xi_0 .. xi_{t-1}`` only, so it is independent of
``xi_t``, and with a zero-mean ``phi_0`` of covariance ``C_0``

    S_t = E[phi_t phi_t^T] = A^t C_0 (A^t)^T + Sigma_t,
    Sigma_t = sum_{k<t} A^(t-k-1) (I - A) Sigma_xi (I - A)^T (A^(t-k-1))^T      (eq. 7)
    E[l_t] = 1/2 tr(H (S_t + Sigma_xi)).

Computed by the recursion ``S_{t+1} = A S_t A^T + (I - A) Sigma_xi (I - A)^T``,
``S_0 = C_0``, in float64.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lofw.nqm.dynamics import as_matrix, check_hessian, update_matrix


def covariance(x: ArrayLike, n: int, name: str) -> np.ndarray:
    """A covariance matrix from a scalar variance (``x I``) or an ``n x n`` matrix.

    Raises:
        ValueError: not a symmetric positive semi-definite matrix (or a negative variance).
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        if not np.isfinite(a) or a < 0:
            raise ValueError(f"{name} must be a non-negative variance, got {x!r}")
        return float(a) * np.eye(n)
    C = as_matrix(a, name, n)
    if not np.allclose(C, C.T, rtol=1e-10, atol=1e-12) or np.linalg.eigvalsh(C)[0] < -1e-12:
        raise ValueError(f"{name} must be a symmetric positive semi-definite matrix")
    return C


def expected_losses(
    H: ArrayLike,
    P: ArrayLike,
    alpha: float,
    T: int,
    sigma_xi: ArrayLike = 1.0,
    phi0_cov: ArrayLike = 10.0,
    precondition: bool = False,
) -> np.ndarray:
    """``E[l_t]`` for ``t = 1 .. T`` (array of length ``T``); see :func:`expected_loss`."""
    H = check_hessian(H)
    n = H.shape[0]
    if int(T) < 1:
        raise ValueError(f"T must be a positive number of steps, got {T}")
    A = update_matrix(H, P, alpha, precondition=precondition)
    B = np.eye(n) - A
    noise = covariance(sigma_xi, n, "sigma_xi")
    S = covariance(phi0_cov, n, "phi0_cov")
    Q = B @ noise @ B.T
    out = np.empty(int(T))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(int(T)):
            S = A @ S @ A.T + Q
            out[t] = 0.5 * np.trace(H @ (S + noise))
    return np.where(np.isnan(out), np.inf, out)


def expected_loss(
    H: ArrayLike,
    P: ArrayLike,
    alpha: float,
    T: int,
    sigma_xi: ArrayLike = 1.0,
    phi0_cov: ArrayLike = 10.0,
    precondition: bool = False,
) -> float:
    """The expected meta-loss ``E[(1/T) sum_{t=1..T} l_t]`` in closed form (eqs. 7-8).

    This is the expectation of eq. 4's loss, *with* its factor 1/2, averaged
    over the iterates ``phi_1 .. phi_T`` after 1 .. T updates. Eq. 8 writes the
    same sum without the 1/2 (and with a fixed ``phi_0``): ``expected_loss``
    is half of eq. 8 with ``phi_0^T (A^t)^T H A^t phi_0`` replaced by its mean
    ``tr(H A^t C_0 (A^t)^T)`` over ``phi_0 ~ N(0, C_0)``.

    Args:
        H: the symmetric positive definite Hessian, ``n x n``.
        P: the learned preconditioner, ``n x n``.
        alpha: the nominal step size.
        T: the horizon (number of updates).
        sigma_xi: the noise covariance ``Sigma_xi`` (``xi_t ~ N(0, Sigma_xi)``),
            a matrix or a scalar variance ``s`` meaning ``s I``. Default 1
            (Appendix B.1).
        phi0_cov: the covariance of the zero-mean initial iterate ``phi_0``,
            a matrix or a scalar variance. Default 10 (Appendix B.1).
        precondition: use the preconditioned dynamics of eq. 12.

    Returns:
        The expected loss, ``inf`` where it overflows float64 (unstable A).
    """
    return float(np.mean(expected_losses(H, P, alpha, T, sigma_xi, phi0_cov, precondition)))
