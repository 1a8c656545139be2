"""The data behind each panel of the paper's Figures 1 and 2 (plain arrays).

:mod:`lofw.nqm.figures` plots these and writes them to disk; nothing here
touches the disk.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from lofw.nqm.dynamics import PAPER_HESSIAN, check_hessian, update_matrix
from lofw.nqm.es import meta_train_es
from lofw.nqm.loss import expected_loss
from lofw.nqm.rollout import NoisyQuadratic
from lofw.nqm.variance import PAPER_HORIZONS, gradient_variance

#: Figure 2b/2c's nominal step sizes, as fractions of the stability bound (see :func:`alphas_from_fractions`).
PAPER_ALPHA_FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4)
#: Smoothing of Figures 2b/2c (Appendix B.1).
PAPER_EMA = 0.95


def lambda_max(H: ArrayLike) -> float:
    """The largest eigenvalue of a symmetric positive definite ``H``."""
    return float(np.linalg.eigvalsh(check_hessian(H))[-1])


def alphas_from_fractions(H: ArrayLike, fractions: Sequence[float], convention: str = "bound") -> np.ndarray:
    """Nominal step sizes from the values ``v`` Figure 2 labels "2 alpha / lambda_max(H)".

    Read literally, that label is dimensionally inconsistent (alpha has units
    of ``1 / H``), so by default ``v`` is read as the fraction of Theorem 1's
    bound ``2 / lambda_max(H)``, the x-range of Figure 2a:
    ``alpha = v * 2 / lambda_max(H)`` (``convention="bound"``). With
    ``convention="literal"``, ``alpha = v * lambda_max(H) / 2``.
    """
    v = np.asarray(fractions, dtype=np.float64)
    lam = lambda_max(H)
    if convention == "bound":
        return v * 2.0 / lam
    if convention == "literal":
        return v * lam / 2.0
    raise ValueError(f"unknown alpha convention {convention!r}; valid choices: 'bound', 'literal'")


def ema(x: ArrayLike, coefficient: float = PAPER_EMA) -> np.ndarray:
    """EMA smoothing along the last axis: ``s_0 = x_0``, ``s_t = c s_{t-1} + (1 - c) x_t``."""
    from scipy.signal import lfilter  # scipy (~0.3 s to import) only for the studies that use it

    x = np.asarray(x, dtype=np.float64)
    c = float(coefficient)
    zi = c * x[..., :1]  # makes s_0 = x_0
    out, _ = lfilter([1.0 - c], [1.0, -c], x, axis=-1, zi=zi)
    return out


# --------------------------------------------------------------------------- Figure 1


@dataclasses.dataclass(frozen=True)
class Intervention:
    """One panel of Figure 1: eigenvalues of A before, along, and after an intervention."""

    name: str
    title: str
    before: np.ndarray
    after: np.ndarray
    path: np.ndarray  # (n_strengths, n) eigenvalues at intermediate strengths
    radius_before: float
    radius_after: float


def _eig(A: np.ndarray) -> np.ndarray:
    return np.linalg.eigvals(A)


def random_problem(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random ``(H, P)``: H with eigenvalues log-spaced in [0.1, 1.5] in a random
    basis, and a dense non-symmetric Gaussian P (entries of std ``0.5 / sqrt(n)``)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    H = (Q * np.geomspace(0.1, 1.5, n)) @ Q.T
    H = 0.5 * (H + H.T)
    P = rng.normal(size=(n, n)) * 0.5 / np.sqrt(n)
    return H, P


def intervention_study(
    n: int = 8,
    seed: int = 0,
    nominal: float = 1.0,
    shrink: float = 0.3,
    combined_nominal: float = 0.5,
    n_strengths: int = 25,
) -> dict:
    """Figure 1: how each intervention moves the eigenvalues of A for a random P.

    P alone (``A = I - P H``) is unstable. The interventions, each swept from
    strength 0 to the stated value:

    (a) nominal term: ``A = I - (alpha I + P) H`` with ``alpha = nominal / lambda_max(H)``;
    (b) weight decay, which shrinks P toward 0: ``P -> s P`` with ``s`` from 1 to ``shrink``;
    (c) preconditioning: ``A = I - H^(-g/2) P H`` with ``g`` from 0 to 1 (eq. 12 at g = 1);
    (d) all combined: ``alpha = combined_nominal / lambda_max(H)``, ``P -> shrink P``, g = 1.

    Args:
        n: dimension of the random problem.
        seed: its seed.
        nominal, shrink, combined_nominal: intervention strengths (see above).
        n_strengths: intermediate strengths drawn for each path.

    Returns:
        ``{"H", "P", "settings", "panels": [Intervention, ...]}``.
    """
    H, P = random_problem(n, seed)
    lam = lambda_max(H)
    lam_h, V = np.linalg.eigh(H)
    I = np.eye(n)
    A0 = update_matrix(H, P, 0.0)
    s = np.linspace(0.0, 1.0, n_strengths)

    def precond_A(P_, alpha, g):
        root = (V * lam_h ** (-g / 2)) @ V.T
        return I - root @ (alpha * I + P_) @ H

    sweeps = {
        "nominal": lambda u: update_matrix(H, P, u * nominal / lam),
        "weight_decay": lambda u: update_matrix(H, (1 - u * (1 - shrink)) * P, 0.0),
        "preconditioning": lambda u: precond_A(P, 0.0, u),
        "combined": lambda u: precond_A((1 - u * (1 - shrink)) * P, u * combined_nominal / lam, u),
    }
    titles = {
        "nominal": rf"(a) nominal term, $\alpha$ = {nominal:g}/$\lambda_{{max}}$",
        "weight_decay": rf"(b) weight decay, P $\to$ {shrink:g} P",
        "preconditioning": r"(c) preconditioning by $H^{-1/2}$",
        "combined": rf"(d) combined ($\alpha$ = {combined_nominal:g}/$\lambda_{{max}}$)",
    }
    panels = []
    for name, sweep in sweeps.items():
        path = np.stack([_eig(sweep(u)) for u in s])
        after = _eig(sweep(1.0))
        panels.append(Intervention(
            name, titles[name], _eig(A0), after, path,
            float(np.max(np.abs(_eig(A0)))), float(np.max(np.abs(after))),
        ))
    return {
        "H": H,
        "P": P,
        "settings": {"n": n, "seed": seed, "nominal": nominal, "shrink": shrink,
                     "combined_nominal": combined_nominal, "lambda_max": lam},
        "panels": panels,
    }


# --------------------------------------------------------------------------- Figure 2a


def variance_study(
    H: ArrayLike = PAPER_HESSIAN,
    n_alphas: int = 25,
    n_seeds: int = 100,
    horizons: Sequence[int] = PAPER_HORIZONS,
    seed: int = 0,
) -> dict:
    """Figure 2a: ``tr(Sigma_hat)`` of the meta-gradient at ``P = 0`` for
    ``n_alphas`` values of alpha evenly spaced in ``[0, 2 / lambda_max(H)]``
    (endpoints included) and every horizon (Appendix B.1: 50 alphas, 500
    seeds, the horizons of eq. A.31)."""
    alphas = np.linspace(0.0, 2.0 / lambda_max(H), n_alphas)
    nqm = NoisyQuadratic(H)
    variance = gradient_variance(nqm, alphas, horizons, n_seeds, jax.random.PRNGKey(seed))
    return {"alphas": alphas, "horizons": np.asarray(horizons), "variance": variance,
            "settings": {"n_alphas": n_alphas, "n_seeds": n_seeds, "seed": seed, "P": "zero"}}


# --------------------------------------------------------------------------- Figures 2b, 2c


def log_spaced(n_iterations: int, n_points: int) -> np.ndarray:
    """About ``n_points`` distinct integers in ``[0, n_iterations]``, log-spaced (0 and the end included)."""
    pts = np.unique(np.round(np.geomspace(1, n_iterations + 1, n_points)).astype(int) - 1)
    return pts[pts <= n_iterations]


def meta_training_study(
    H: ArrayLike = PAPER_HESSIAN,
    alpha_fractions: Sequence[float] = PAPER_ALPHA_FRACTIONS,
    convention: str = "bound",
    n_seeds: int = 5,
    T: int = 50,
    n_iterations: int = 20_000,
    n_pairs: int = 8,
    sigma: float = 0.01,
    learning_rate: float = 1e-4,
    seed: int = 0,
    n_points: int = 300,
) -> dict:
    """Figures 2b and 2c: ES meta-training of a dense P from ``P = 0``, per alpha and seed.

    Returns per-iteration arrays (``alphas x seeds x iterations``):
    ``eig_abs`` (the moduli of A's eigenvalues, largest first, for P before each
    step and after the last) and ``meta_loss`` (the mean sampled meta-loss of
    each step's ES episodes); and, at ``n_points`` log-spaced iterations,
    ``expected_loss`` (the exact expected meta-loss of that P). ``optimum`` is
    the smallest expected meta-loss over all P (found numerically).
    """
    H = check_hessian(H)
    alphas = alphas_from_fractions(H, alpha_fractions, convention)
    nqm = NoisyQuadratic(H)
    keys = jax.random.split(jax.random.PRNGKey(seed), n_seeds)

    def one(alpha, key):
        return meta_train_es(nqm, alpha, key, T=T, n_iterations=n_iterations, n_pairs=n_pairs,
                             sigma=sigma, learning_rate=learning_rate)

    run = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))
    Ps, meta_loss = run(jnp.asarray(alphas, jnp.float32), keys)
    Ps = np.asarray(Ps, dtype=np.float64)  # (a, s, it+1, n, n)
    n = H.shape[0]
    A = np.eye(n) - (alphas[:, None, None, None, None] * np.eye(n) + Ps) @ H
    eig_abs = -np.sort(-np.abs(np.linalg.eigvals(A)), axis=-1)
    checkpoints = log_spaced(n_iterations, n_points)
    exact = np.array([[[expected_loss(H, Ps[i, j, k], alphas[i], T) for k in checkpoints]
                       for j in range(n_seeds)] for i in range(len(alphas))])
    return {
        "alpha_fractions": np.asarray(alpha_fractions, dtype=np.float64),
        "alphas": alphas,
        "eig_abs": eig_abs,
        "meta_loss": np.asarray(meta_loss, dtype=np.float64),
        "checkpoints": checkpoints,
        "expected_loss": exact,
        "optimum": optimal_expected_loss(H, T),
        "settings": {"convention": convention, "n_seeds": n_seeds, "T": T, "n_iterations": n_iterations,
                     "n_pairs": n_pairs, "sigma": sigma, "learning_rate": learning_rate, "seed": seed,
                     "outer_optimizer": "clip(1.0) by value + AdamW(weight_decay=0)", "P0": "zero"},
    }


def optimal_expected_loss(H: ArrayLike, T: int) -> float:
    """``min over P`` of :func:`lofw.nqm.expected_loss` at ``alpha = 0`` (Nelder-Mead from
    ``P = H^-1 / 2``); alpha only shifts P, so the minimum is the same for every alpha."""
    from scipy.optimize import minimize  # scipy only for the studies that use it

    H = check_hessian(H)
    n = H.shape[0]
    x0 = (0.5 * np.linalg.inv(H)).ravel()
    result = minimize(lambda x: expected_loss(H, x.reshape(n, n), 0.0, T), x0, method="Nelder-Mead",
                      options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20_000})
    return float(result.fun)
