"""NQM analogues of the stabilisers of STAR's blackbox term (docs/stable_star.md).

In the linear NQM the learned term is ``P grad`` beside the nominal term
``alpha grad`` (eq. 5), and the update map is ``A = I - (alpha I + P) H``
(eq. 6). The stabilisers of ``plugins/preconditioner/stable.py``
have these analogues, with the whole parameter vector as one tensor:

- **gain limit** (``tensor_limited_rms`` and ``clipped_rms``): the learned
  step may be at most ``k`` times the nominal step. Asked of every gradient,
  ``||P g|| <= k alpha ||g||`` is ``||P||_2 <= k alpha``; the linear map that
  meets it with the least change of direction is
  ``P -> P min(1, k alpha / ||P||_2)`` (:func:`limit_gain`). The per-element
  clip ``|(P g)_i| <= k alpha |g_i|`` implies the same bound on the gain, but
  is not linear (it rescales each coordinate by a state-dependent factor in
  [0, 1], Lemma 3's multiplicative disturbance with ``d_max = 1``).
  Consequences (closed forms, :func:`limited_radius_bound`,
  :func:`limited_symmetric_guarantee`): every eigenvalue of P lies in the
  disk of radius ``k alpha``, so the learned term shrinks with the nominal
  step; ``rho(A) <= max_i |1 - alpha h_i| + k alpha lambda_max(H)`` for any P
  (from ``H^1/2 A H^-1/2 = I - alpha H - H^1/2 P H^1/2``); and for symmetric P
  Theorem 1 holds whenever ``k <= 1`` and ``(1 + k) alpha <= 2 / lambda_max(H)``.
  With ``k > 1`` the learned term may overpower the nominal descent
  (``alpha + lambda_min(P)`` down to ``(1 - k) alpha < 0``): no guarantee.
- **centring** (``centered_rms``): the tensor mean of the learned direction
  is removed, ``P -> C P`` with ``C = I - 1 1^T / n`` (:func:`centered`). It
  removes the learned term's component along the all-ones direction (a
  uniform drift of every coordinate); it bounds nothing by itself.

Plain numpy in float64, like :mod:`lofw.nqm.dynamics`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lofw.nqm.dynamics import as_matrix, check_hessian, update_matrix
from lofw.nqm.studies import Intervention, lambda_max, random_problem


def centered(P: ArrayLike) -> np.ndarray:
    """``C P`` with ``C = I - 1 1^T / n``: each column of P less its mean."""
    P = as_matrix(P, "P")
    return P - P.mean(axis=0, keepdims=True)


def limit_gain(P: ArrayLike, alpha: float, k: float) -> np.ndarray:
    """``P min(1, k alpha / ||P||_2)``: the learned gain at most ``k`` times ``alpha``.

    Raises:
        ValueError: ``alpha`` is negative or ``k`` not positive.
    """
    P = as_matrix(P, "P")
    if not alpha >= 0 or not k > 0:
        raise ValueError(f"need alpha >= 0 and k > 0, got alpha={alpha}, k={k}")
    norm = float(np.linalg.norm(P, 2))
    bound = float(k) * float(alpha)
    return P if norm <= bound else P * (bound / norm)


def stabilise(P: ArrayLike, alpha: float, k: float | None = None, center: bool = False) -> np.ndarray:
    """P after the stabilisers in the preconditioners' order: centring, then the gain limit."""
    P = centered(P) if center else as_matrix(P, "P")
    return P if k is None else limit_gain(P, alpha, k)


def limited_radius_bound(H: ArrayLike, alpha: float, k: float) -> float:
    """``max_i |1 - alpha h_i| + k alpha lambda_max(H)``: an upper bound on
    ``rho(I - (alpha I + P) H)`` for every P with ``||P||_2 <= k alpha``."""
    h = np.linalg.eigvalsh(check_hessian(H))
    return float(np.max(np.abs(1.0 - alpha * h)) + k * alpha * h[-1])


def limited_symmetric_guarantee(H: ArrayLike, alpha: float, k: float) -> bool:
    """Theorem 1 holds for every symmetric P with ``||P||_2 <= k alpha``:
    ``k <= 1`` (lower bound) and ``(1 + k) alpha <= 2 / lambda_max(H)`` (upper)."""
    lam_max = float(np.linalg.eigvalsh(check_hessian(H))[-1])
    return bool(k <= 1.0 and (1.0 + k) * alpha * lam_max <= 2.0 + 1e-12)


def stabiliser_study(
    n: int = 8,
    seed: int = 0,
    alpha_fraction: float = 0.05,
    k: float = 4.0,
    tight_k: float = 1.0,
    n_strengths: int = 25,
) -> dict:
    """The Figure 1 view of the stabilisers: eigenvalues of A before, along and after each.

    The random ``(H, P)`` of Figure 1 (:func:`lofw.nqm.studies.random_problem`),
    with a small nominal term ``alpha = alpha_fraction / lambda_max(H)``, so that
    the learned term dominates (STAR's blackbox term was measured at 180-2700x
    its nominal term) and ``A = I - (alpha I + P) H`` is unstable. Panels:

    (a) gain limit to ``k alpha``, swept from no limit (``||P|| / alpha``) down to ``k``;
    (b) gain limit to ``tight_k alpha``;
    (c) centring, ``P -> (I - u 1 1^T / n) P`` for u from 0 to 1;
    (d) centring, then the gain limit to ``k alpha``.

    Returns:
        ``{"H", "P", "settings", "panels": [Intervention, ...]}`` as
        :func:`lofw.nqm.studies.intervention_study`.
    """
    H, P = random_problem(n, seed)
    alpha = alpha_fraction / lambda_max(H)
    ones = np.ones((n, n)) / n
    free = float(np.linalg.norm(P, 2)) / alpha

    def limited(P_, k_target, u):
        # u = 0: no limit (k at the gain P already has); u = 1: k_target (log-spaced).
        k0 = max(float(np.linalg.norm(P_, 2)) / alpha, k_target)
        return limit_gain(P_, alpha, k0 ** (1 - u) * k_target**u)

    sweeps = {
        "gain_limit": lambda u: limited(P, k, u),
        "tight_gain_limit": lambda u: limited(P, tight_k, u),
        "centring": lambda u: (np.eye(n) - u * ones) @ P,
        "centring_and_limit": lambda u: limited((np.eye(n) - u * ones) @ P, k, u),
    }
    titles = {
        "gain_limit": rf"(a) gain limit $\|P\| \leq$ {k:g}$\alpha$",
        "tight_gain_limit": rf"(b) gain limit $\|P\| \leq$ {tight_k:g}$\alpha$",
        "centring": r"(c) centring, P $\to$ (I - 11$^T$/n) P",
        "centring_and_limit": rf"(d) centring + limit {k:g}$\alpha$",
    }
    before = np.linalg.eigvals(update_matrix(H, P, alpha))
    panels = []
    for name, sweep in sweeps.items():
        strengths = np.linspace(0.0, 1.0, n_strengths)
        path = np.stack([np.linalg.eigvals(update_matrix(H, sweep(u), alpha)) for u in strengths])
        after = np.linalg.eigvals(update_matrix(H, sweep(1.0), alpha))
        panels.append(Intervention(name, titles[name], before, after, path,
                                   float(np.max(np.abs(before))), float(np.max(np.abs(after)))))
    return {
        "H": H,
        "P": P,
        "settings": {"n": n, "seed": seed, "alpha_fraction": alpha_fraction, "alpha": alpha, "k": k,
                     "tight_k": tight_k, "gain_of_P_over_alpha": free,
                     "radius_bound_k": limited_radius_bound(H, alpha, k),
                     "radius_bound_tight_k": limited_radius_bound(H, alpha, tight_k)},
        "panels": panels,
    }
