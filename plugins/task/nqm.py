"""The ``nqm`` task: the noisy quadratic loss of the paper's eq. 4.

    l(phi; xi) = 1/2 (phi - xi)^T H (phi - xi),   xi ~ N(0, Sigma_xi),   phi_0 ~ N(0, C_0)

A batch is one noise draw ``{"xi": xi}``, so a learned optimizer trained on
this task through the generic meta-training loop sees exactly the dynamics of
:mod:`lofw.nqm` (eq. 6). The defaults are Appendix B.1's: the paper's 2x2 H
(eq. A.30), ``Sigma_xi = I`` and ``C_0 = 10 I``.
"""

from __future__ import annotations

import jax
from jaxtyping import Array, Float, PRNGKeyArray

import lofw
from lofw.nqm import PAPER_HESSIAN, NoisyQuadratic


class NQMTask(lofw.AbstractTask):
    """The noisy quadratic model as an inner task.

    Args:
        hessian: the symmetric positive definite H (default: the paper's, eq. A.30).
        noise_cov: ``Sigma_xi``, a matrix or a variance ``s`` meaning ``s I`` (default 1).
        init_cov: ``C_0``, the covariance of the initial parameters, a matrix or a
            variance (default 10).

    Parameters (``init``): one vector ``phi`` of length ``n``. The meta-loss is
    the raw loss (``normalizer`` is the identity).
    """

    problem: NoisyQuadratic

    def __init__(
        self,
        hessian: list[list[float]] | None = None,
        noise_cov: float | list[list[float]] = 1.0,
        init_cov: float | list[list[float]] = 10.0,
    ):
        self.problem = NoisyQuadratic(PAPER_HESSIAN if hessian is None else hessian, noise_cov, init_cov)

    @property
    def dim(self) -> int:
        """The number of parameters."""
        return self.problem.dim

    def init(self, key: PRNGKeyArray) -> Float[Array, " n"]:
        """``phi_0 ~ N(0, C_0)``."""
        return self.problem.init_root @ jax.random.normal(key, (self.dim,))

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> dict[str, Float[Array, " n"]]:
        """One noise draw ``{"xi": xi ~ N(0, Sigma_xi)}`` (every split has the same distribution)."""
        del split
        return {"xi": self.problem.noise_root @ jax.random.normal(key, (self.dim,))}

    def loss(self, params: Float[Array, " n"], batch: dict[str, Float[Array, " n"]]) -> Float[Array, ""]:
        """``1/2 (phi - xi)^T H (phi - xi)`` (eq. 4)."""
        r = params - batch["xi"]
        return 0.5 * r @ (self.problem.hessian @ r)
