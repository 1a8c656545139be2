"""``random_quadratic``: a family of noisy quadratic bowls of random scale and conditioning.

Each episode draws a bowl ``L(x) = 1/2 sum_i lambda_i (x_i - c_i)^2`` in
``dim`` dimensions: the centre ``c ~ N(0, I)``, an overall scale ``a``
log-uniform in ``scale`` and a condition number ``k`` log-uniform in
``condition``, with curvatures ``lambda_i = a * k^(-u_i)``, ``u_i ~ U(0, 1)``
(so they spread log-uniformly over ``[a / k, a]``). Training starts from
``x_0 ~ N(0, I)``; each batch adds ``noise * N(0, I)`` to the gradient (the
loss value is the bowl's, as in ``gradient_noise``). An optimizer that has
only seen one scale of curvature cannot solve this family with one step
size: it is the synthetic member of lofw's meta-training mixtures.

Meta-loss normaliser: ``clip(L / sum_i lambda_i, 0, 1.5)``, non-finite ->
1.5. ``sum_i lambda_i`` is the expected loss at initialisation
(``E (x_0 - c)_i^2 = 2``), so every bowl's meta-loss is in units of its
untrained loss, like a classifier's normalised by its chance loss.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

import lofw
from lofw_plugins.task.wrapper import AbstractDefaultMemberFamily, log_uniform

#: The normaliser's bound, in units of the expected initial loss.
MAX_META_LOSS = 1.5


class Bowl(lofw.AbstractTask):
    """One member: curvatures ``curvature`` and centre ``centre``."""

    curvature: Float[Array, " dim"]
    centre: Float[Array, " dim"]
    noise: float = eqx.field(static=True)

    def init(self, key: PRNGKeyArray) -> Float[Array, " dim"]:
        return jax.random.normal(key, self.centre.shape, jnp.float32)

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> dict[str, Any]:
        return {"noise": self.noise * jax.random.normal(key, self.centre.shape, jnp.float32)}

    def loss(self, params: Float[Array, " dim"], batch: dict[str, Any]) -> Float[Array, ""]:
        bowl = 0.5 * jnp.sum(self.curvature * (params - self.centre) ** 2)
        return bowl + jnp.vdot(params - jax.lax.stop_gradient(params), batch["noise"])

    def normalizer(self, loss: Float[Array, ""]) -> Float[Array, ""]:
        scaled = loss / jnp.sum(self.curvature)
        return jnp.where(jnp.isfinite(scaled), jnp.clip(scaled, 0.0, MAX_META_LOSS), MAX_META_LOSS)

    @property
    def max_meta_loss(self) -> float:
        return MAX_META_LOSS


class RandomQuadratic(AbstractDefaultMemberFamily):
    """The family (module docstring); its own methods are those of the bowl
    with every curvature 1 and centre 0.

    Args:
        dim: dimensions of the bowl.
        scale: ``[low, high]`` of the largest curvature ``a``, ``0 < low <= high``.
        condition: ``[low, high]`` of the condition number ``k``, ``1 <= low <= high``.
        noise: standard deviation of the gradient noise (``>= 0``).
    """

    dim: int = eqx.field(static=True)
    scale: tuple[float, float] = eqx.field(static=True)
    condition: tuple[float, float] = eqx.field(static=True)
    noise: float = eqx.field(static=True)

    def __init__(self, dim: int = 32, scale: tuple[float, float] = (1e-2, 1e2),
                 condition: tuple[float, float] = (1.0, 1e3), noise: float = 0.1):
        scale, condition = tuple(float(x) for x in scale), tuple(float(x) for x in condition)
        if dim < 1:
            raise ValueError(f"`dim` must be at least 1; got {dim}")
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"`scale` must hold 0 < low <= high; got {list(scale)}")
        if not 1 <= condition[0] <= condition[1]:
            raise ValueError(f"`condition` must hold 1 <= low <= high; got {list(condition)}")
        if not noise >= 0:
            raise ValueError(f"`noise` must be non-negative; got {noise}")
        self.dim, self.scale, self.condition, self.noise = int(dim), scale, condition, float(noise)

    def sample_config(self, key: PRNGKeyArray) -> dict[str, Array]:
        k_scale, k_cond, k_spread, k_centre = jax.random.split(key, 4)
        top = log_uniform(k_scale, (), *self.scale)
        condition = log_uniform(k_cond, (), *self.condition)
        spread = jax.random.uniform(k_spread, (self.dim,), jnp.float32)
        return {"curvature": top * condition ** (-spread),
                "centre": jax.random.normal(k_centre, (self.dim,), jnp.float32)}

    def configured(self, config: dict[str, Array] | None) -> Bowl:
        if config is None:
            return Bowl(jnp.ones((self.dim,), jnp.float32), jnp.zeros((self.dim,), jnp.float32), self.noise)
        return Bowl(config["curvature"], config["centre"], self.noise)

    @property
    def max_meta_loss(self) -> float:
        return MAX_META_LOSS
