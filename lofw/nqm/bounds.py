"""Sufficient conditions for stability, as bounds on the eigenvalues of P.

Each ``*_bounds`` function returns ``(lower, upper)``: the stability result
holds when every eigenvalue of P (of ``P~`` for Lemma 3) lies in
``[lower, upper]``. The paper's extracted text lost its fraction bars; the
bounds are

- Theorem 1 (eqs. 9-10), for ``A = I - (alpha I + P) H``:
  ``-alpha <= lambda_min(P)`` and ``lambda_max(P) <= 2 / lambda_max(H) - alpha``;
- Lemma 2 (eqs. 9 and 13), for the preconditioned ``A = I - H^-1/2 (alpha I + P) H``:
  ``-alpha <= lambda_min(P)`` and ``lambda_max(P) <= 2 / sqrt(lambda_max(H)) - alpha``;
- Lemma 3 (eqs. 16-17), robust stability for every ``P = Delta P~`` with
  ``Delta = diag(d)``, ``0 < d_i <= d_max_i`` (eq. 15):
  ``-alpha / max_i d_max_i <= lambda_min(P~)`` and
  ``lambda_max(P~) <= (2 / lambda_max(H) - alpha) / max_i d_max_i``.

Scope: the proofs (Appendix A.2) use that ``alpha I + P`` is symmetric
positive semi-definite, so the bounds guarantee ``rho(A) <= 1`` for
*symmetric* P (for Lemma 3: symmetric ``P~`` commuting with ``Delta``). The
theorem's wording, "P diagonalizable with real eigenvalues", is not enough:
``P = [[0, 5], [0, 0.1]]`` with the paper's H and ``alpha = 0`` has
eigenvalues 0 and 0.1, inside the bounds, yet ``rho(A) ~ 2.03``.
:func:`check_bounds` reports whether P is symmetric alongside the bounds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike

from lofw.nqm.dynamics import as_matrix, check_hessian

#: Tolerance on eigenvalues when deciding whether a bound holds or P is symmetric.
TOL = 1e-10


def _lambda_max(H: ArrayLike) -> float:
    return float(np.linalg.eigvalsh(check_hessian(H))[-1])


def theorem1_bounds(H: ArrayLike, alpha: float) -> tuple[float, float]:
    """Theorem 1 (eqs. 9-10): ``(-alpha, 2 / lambda_max(H) - alpha)``.

    With ``alpha >= 0`` and symmetric P whose eigenvalues lie in these bounds,
    ``rho(I - (alpha I + P) H) <= 1``.
    """
    return 0.0 - float(alpha), 2.0 / _lambda_max(H) - float(alpha)


def lemma2_bounds(H: ArrayLike, alpha: float) -> tuple[float, float]:
    """Lemma 2 (eqs. 9 and 13): ``(-alpha, 2 / sqrt(lambda_max(H)) - alpha)``.

    For the preconditioned update of eq. 12, ``A = I - H^-1/2 (alpha I + P) H``,
    which is similar to ``I - (alpha I + P) H^1/2``: Theorem 1 with ``H^1/2``.
    Looser than Theorem 1's upper bound when ``lambda_max(H) > 1``.
    """
    return 0.0 - float(alpha), 2.0 / float(np.sqrt(_lambda_max(H))) - float(alpha)


def lemma3_bounds(H: ArrayLike, alpha: float, d_max: ArrayLike) -> tuple[float, float]:
    """Lemma 3 (eqs. 16-17): robust bounds on the eigenvalues of ``P~``.

    Args:
        H: the Hessian.
        alpha: the nominal step size; the lemma assumes ``0 < alpha < 2 / lambda_max(H)``.
        d_max: the upper limits ``d_max_i`` of the diagonal disturbance
            ``Delta = diag(d)``, ``0 < d_i <= d_max_i`` (eq. 15), as a vector or
            a scalar; only ``max_i d_max_i`` enters.

    Returns:
        ``(-alpha / D, (2 / lambda_max(H) - alpha) / D)`` with ``D = max_i d_max_i``:
        if the eigenvalues of ``P~`` lie in it, ``rho(I - (alpha I + Delta P~) H) <= 1``
        for every admissible ``Delta`` commuting with ``P~``.

    Raises:
        ValueError: some ``d_max_i`` is not positive.
    """
    d = np.atleast_1d(np.asarray(d_max, dtype=np.float64))
    if d.size == 0 or not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError(f"d_max must be positive, got {d_max!r}")
    D = float(d.max())
    lower, upper = theorem1_bounds(H, alpha)
    return lower / D, upper / D


@dataclasses.dataclass(frozen=True)
class BoundCheck:
    """Whether the eigenvalues of P lie within a pair of bounds.

    Attributes:
        result: ``"theorem1"``, ``"lemma2"`` or ``"lemma3"``.
        lower, upper: the bounds on the eigenvalues.
        eig_min, eig_max: the extreme real parts of P's eigenvalues.
        real_eigenvalues: P's eigenvalues are real (the results' premise).
        symmetric: P is symmetric (what the proofs use).
        holds: the eigenvalues are real and lie within the bounds.
        guaranteed: ``holds`` and P symmetric, so ``rho(A) <= 1`` is proven.
    """

    result: str
    lower: float
    upper: float
    eig_min: float
    eig_max: float
    real_eigenvalues: bool
    symmetric: bool
    holds: bool
    guaranteed: bool


def check_bounds(P: ArrayLike, bounds: tuple[float, float], result: str) -> BoundCheck:
    """Compare the eigenvalues of ``P`` with ``bounds`` (from one of the functions above)."""
    P = as_matrix(P, "P")
    lam = np.linalg.eigvals(P)
    scale = max(1.0, float(np.max(np.abs(lam))))
    real = bool(np.all(np.abs(lam.imag) <= 1e-9 * scale))
    symmetric = bool(np.allclose(P, P.T, rtol=0, atol=TOL * scale))
    lower, upper = bounds
    lo, hi = float(lam.real.min()), float(lam.real.max())
    holds = real and lo >= lower - TOL * scale and hi <= upper + TOL * scale
    return BoundCheck(result, float(lower), float(upper), lo, hi, real, symmetric, holds, holds and symmetric)
