"""The noisy quadratic model (NQM) of the paper's section 4: stability toolkit.

    import numpy as np, lofw.nqm as nqm
    H = nqm.PAPER_HESSIAN                                   # Appendix B.1, eq. A.30
    A = nqm.update_matrix(H, P, alpha)                      # I - (alpha I + P) H        (eq. 6)
    A = nqm.update_matrix(H, P, alpha, precondition=True)   # I - H^-1/2 (alpha I + P) H (eq. 12)
    nqm.spectral_radius(A)
    nqm.theorem1_bounds(H, alpha)       # (lower, upper) on the eigenvalues of P (eqs. 9-10)
    nqm.lemma2_bounds(H, alpha)         # preconditioned version                 (eq. 13)
    nqm.lemma3_bounds(H, alpha, d_max)  # robust version, on the eigenvalues of P~ (eqs. 16-17)
    nqm.expected_loss(H, P, alpha, T, sigma_xi, phi0_cov)   # closed form (eqs. 7-8)

Sampled episodes (:class:`NoisyQuadratic`), the meta-gradient variance study
(:mod:`lofw.nqm.variance`, Figure 2a), antithetic-ES meta-training
(:mod:`lofw.nqm.es`, Figures 2b/2c) and the figures (:mod:`lofw.nqm.figures`,
``lofw nqm figures``) build on these.
"""

from lofw.nqm.bounds import BoundCheck, check_bounds, lemma2_bounds, lemma3_bounds, theorem1_bounds
from lofw.nqm.dynamics import PAPER_HESSIAN, eigenvalues, spectral_radius, sqrtm_spd, update_matrix
from lofw.nqm.es import antithetic_es_gradient, meta_train_es
from lofw.nqm.loss import expected_loss, expected_losses
from lofw.nqm.rollout import NoisyQuadratic
from lofw.nqm.variance import PAPER_HORIZONS, gradient_variance, meta_gradients, trace_covariance

__all__ = [
    "PAPER_HESSIAN",
    "PAPER_HORIZONS",
    "BoundCheck",
    "NoisyQuadratic",
    "antithetic_es_gradient",
    "check_bounds",
    "eigenvalues",
    "expected_loss",
    "expected_losses",
    "gradient_variance",
    "lemma2_bounds",
    "lemma3_bounds",
    "meta_gradients",
    "meta_train_es",
    "spectral_radius",
    "sqrtm_spd",
    "theorem1_bounds",
    "trace_covariance",
    "update_matrix",
]
