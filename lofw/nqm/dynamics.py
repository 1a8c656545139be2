"""The linear update map of the noisy quadratic model (paper section 4).

With the loss ``l(phi) = 1/2 (phi - xi)^T H (phi - xi)`` (eq. 4), its gradient
``H (phi - xi)`` and the update ``phi <- phi - (alpha I + P) grad`` (eq. 5 with
the nominal term ``g = alpha grad``), the iterates follow the linear system

    phi_{t+1} = A phi_t + (I - A) xi_t,    A = I - (alpha I + P) H      (eq. 6)

and with the Hessian preconditioner of eq. 11 applied to the whole update,
``phi <- phi - H^-1/2 (alpha I + P) grad`` (eq. 12), the same system with

    A = I - H^-1/2 (alpha I + P) H.

Everything here is plain numpy in float64: these are the exact quantities the
tests and figures compare against.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: The paper's two-dimensional Hessian (Appendix B.1, eq. A.30).
PAPER_HESSIAN = np.array([[1.11, 0.596], [0.596, 0.486]])


def as_matrix(x: ArrayLike, name: str, n: int | None = None) -> np.ndarray:
    """``x`` as a finite float64 square matrix (of size ``n`` if given).

    Raises:
        ValueError: ``x`` is not a finite square matrix of the right size.
    """
    m = np.asarray(x, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {m.shape}")
    if n is not None and m.shape[0] != n:
        raise ValueError(f"{name} must be {n}x{n} to match H, got {m.shape[0]}x{m.shape[1]}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} has non-finite entries")
    return m


def check_hessian(H: ArrayLike) -> np.ndarray:
    """``H`` as a symmetric positive definite float64 matrix.

    Raises:
        ValueError: ``H`` is not square, not symmetric or not positive definite.
    """
    H = as_matrix(H, "H")
    if not np.allclose(H, H.T, rtol=1e-10, atol=1e-12):
        raise ValueError("H must be symmetric")
    lam_min = np.linalg.eigvalsh(H)[0]
    if lam_min <= 0:
        raise ValueError(f"H must be positive definite; its smallest eigenvalue is {lam_min:.6g}")
    return H


def sqrtm_spd(H: ArrayLike, power: float = 0.5) -> np.ndarray:
    """``H ** power`` of a symmetric positive definite ``H`` (through ``eigh``)."""
    lam, V = np.linalg.eigh(check_hessian(H))
    return (V * lam**power) @ V.T


def update_matrix(H: ArrayLike, P: ArrayLike, alpha: float, precondition: bool = False) -> np.ndarray:
    """The dynamics matrix ``A`` of the noise-free update.

    Args:
        H: the symmetric positive definite Hessian, ``n x n``.
        P: the learned dense preconditioner, ``n x n`` (any real matrix).
        alpha: the nominal step size (the coefficient of the nominal term).
        precondition: apply the Hessian preconditioner ``H^-1/2`` to the
            whole update (eq. 12).

    Returns:
        ``I - (alpha I + P) H`` (eq. 6), or ``I - H^-1/2 (alpha I + P) H``
        (eq. 12) with ``precondition=True``.
    """
    H = check_hessian(H)
    n = H.shape[0]
    M = float(alpha) * np.eye(n) + as_matrix(P, "P", n)
    if precondition:
        M = sqrtm_spd(H, -0.5) @ M
    return np.eye(n) - M @ H


def eigenvalues(A: ArrayLike) -> np.ndarray:
    """The (complex) eigenvalues of ``A``, largest magnitude first."""
    lam = np.linalg.eigvals(as_matrix(A, "A"))
    return lam[np.argsort(-np.abs(lam), kind="stable")]


def spectral_radius(A: ArrayLike) -> float:
    """``rho(A) = max_i |lambda_i(A)|``; the noise-free system is stable when it is < 1
    (marginally stable at 1, section 4.1)."""
    return float(np.max(np.abs(np.linalg.eigvals(as_matrix(A, "A")))))
