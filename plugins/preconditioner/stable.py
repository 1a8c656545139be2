"""Candidate stabilisers of STAR's blackbox term, as preconditioners.

lofw's own variants, not the paper's. Measured on lofw's trained STAR
(docs/stable_star.md): under meta weight decay the direction head ``x`` tends to a
constant, and ``rsqrt(v + 1e-6)`` grows to ~1000 as the gradients vanish, so
the blackbox term becomes a drift on every weight long after the horizon.
Each candidate attacks one link of that chain; all are per tensor, with
``v`` the second-moment EMA and ``m_i`` the momenta of :class:`lofw.LeafStats`:

- ``centered_rms``: ``(x - mean(x)) * rsqrt(v + eps)``; the tensor mean of
  the direction is removed, so it cannot be a constant drift.
- ``clipped_rms``: ``clip(pre, -b, b)`` per element with
  ``b = k * |mean_i m_i| * rsqrt(v + eps)``, the size of the AdamAggMo
  nominal direction; ``pre`` is the plain or (``center=True``) centred RMS
  direction.
- ``tensor_limited_rms``: ``pre * min(1, k * rms(n) / rms(pre))`` with
  ``n = mean_i m_i * rsqrt(v + eps)`` the AdamAggMo direction and ``rms``
  the root-mean-square over the tensor: the per-tensor variant of the clip.
- ``bias_corrected_rms``: ``x * rsqrt(v_hat + eps)`` with Adam's
  ``v_hat = v / (1 - beta2**(t + 1))`` (``beta2`` the features' own,
  meta-learned second-moment decay, read from ``stats.second_moment_decay``).

The limits bound the preconditioned direction, not the whole blackbox step:
``b3``, the learned magnitude ``exp(b4 * m_b)`` and the nominal scale ``b1``
stay outside them. docs/stable_star.md has the recipes and the grid.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import lax

import lofw
from lofw_plugins.nominal.momentum import mean_of_momenta

#: eps inside the root, as STAR's ``rms`` preconditioner and nominal term.
EPS = 1e-6


def centered(x, shape):
    """``x - mean(x)`` over the whole tensor (``x`` broadcast to ``shape`` first)."""
    x = jnp.broadcast_to(x, shape)
    return x - jnp.mean(x)


def rms_direction(x, stats: lofw.LeafStats, center: bool, eps: float):
    """``x * rsqrt(v + eps)`` at the tensor's shape, ``x`` first centred over the tensor if ``center``."""
    x = centered(x, stats.param.shape) if center else jnp.broadcast_to(x, stats.param.shape)
    return x * lax.rsqrt(stats.second_moment + eps)


def nominal_direction(stats: lofw.LeafStats, eps: float):
    """The AdamAggMo direction ``mean_i m_i * rsqrt(v + eps)`` the limits are measured against."""
    return mean_of_momenta(stats.momentum) * lax.rsqrt(stats.second_moment + eps)


def _check_k(k: float) -> None:
    if not k > 0:
        raise ValueError(f"the limit k must be positive, got k={k}")


class CenteredRMS(lofw.AbstractPreconditioner):
    """``(x - mean(x)) * rsqrt(v + eps)``, the mean over the tensor.

    A direction head that has become a constant (its last-layer bias) gives
    no step at all. A scalar parameter (a one-element tensor) gets no
    blackbox step from it. No meta-parameters.
    """

    eps: float = eqx.field(static=True, default=EPS)

    def apply(self, x, stats: lofw.LeafStats):
        return centered(x, stats.param.shape) * lax.rsqrt(stats.second_moment + self.eps)


class _LimitedRMS(lofw.AbstractPreconditioner):
    """The arguments the two limits share: ``k``, ``center`` and ``eps``."""

    k: float = eqx.field(static=True, default=4.0)
    center: bool = eqx.field(static=True, default=False)
    eps: float = eqx.field(static=True, default=EPS)

    def __check_init__(self):
        _check_k(self.k)


class ClippedRMS(_LimitedRMS):
    """Per element ``clip(pre, -b, b)``, ``b = k * |mean_i m_i| * rsqrt(v + eps)``.

    ``pre`` is ``x * rsqrt(v + eps)``, or ``(x - mean(x)) * rsqrt(v + eps)``
    with ``center=True``. ``b`` is ``k`` times the size of the AdamAggMo
    direction, so the preconditioned blackbox direction is never more than
    ``k`` times the nominal direction and shrinks with it as the momenta
    vanish, however large ``rsqrt(v + eps)`` grows.

    Caveat on the default: ``k = 4`` comes from a probe
    (research/star_stability_probe.md) that tried ``k = 1`` first and chose
    4 after seeing it (selection bias), on one task and one or two meta-seeds.

    Args:
        k: the bound as a multiple of the nominal direction's size (> 0).
        center: remove the tensor mean of ``x`` first (as ``centered_rms``).
        eps: inside the root, for both ``pre`` and ``b``.
    """

    def apply(self, x, stats: lofw.LeafStats):
        pre = rms_direction(x, stats, self.center, self.eps)
        bound = self.k * jnp.abs(nominal_direction(stats, self.eps))
        return jnp.clip(pre, -bound, bound)


class TensorLimitedRMS(_LimitedRMS):
    """``pre * min(1, k * rms(n) / rms(pre))``: the per-tensor variant of ``clipped_rms``.

    ``pre`` as in :class:`ClippedRMS`; ``n = mean_i m_i * rsqrt(v + eps)`` is
    the AdamAggMo direction and ``rms`` the root-mean-square over the tensor.
    The direction keeps its shape inside the tensor and is scaled down, as a
    whole, until its RMS is at most ``k`` times the nominal direction's. A
    zero ``pre`` stays zero. ``k = 4`` as in ``clipped_rms``, with the same caveat.

    Args:
        k: the bound as a multiple of the nominal direction's RMS (> 0).
        center: remove the tensor mean of ``x`` first.
        eps: inside the root.
    """

    def apply(self, x, stats: lofw.LeafStats):
        pre = rms_direction(x, stats, self.center, self.eps)
        # Compared in squares: sqrt has an infinite derivative at 0, and a zero
        # direction or a zero nominal term must differentiate to finite values.
        size_sq = jnp.mean(jnp.square(pre))
        limit_sq = self.k**2 * jnp.mean(jnp.square(nominal_direction(stats, self.eps)))
        over = size_sq > limit_sq
        ratio = jnp.where(over, limit_sq / jnp.where(over, size_sq, 1.0), 1.0)
        factor = jnp.where(ratio > 0, jnp.sqrt(jnp.where(ratio > 0, ratio, 1.0)), 0.0)
        return pre * factor


class BiasCorrectedRMS(lofw.AbstractPreconditioner):
    """``x * rsqrt(v_hat + eps)``, ``v_hat = v / (1 - beta2**(t + 1))`` (Adam's correction).

    ``t = stats.step`` counts the updates before this one, so ``t + 1`` EMA
    steps are in ``v``. ``beta2`` is ``stats.second_moment_decay``, the
    features' own (meta-learned) decay. Early in training ``v_hat > v``, so
    the gain is smaller than ``rms``'s; after a few thousand steps the two agree.

    Raises:
        ValueError: when traced with statistics whose features component
            does not fill ``LeafStats.second_moment_decay``.
    """

    eps: float = eqx.field(static=True, default=EPS)

    def apply(self, x, stats: lofw.LeafStats):
        beta2 = stats.second_moment_decay
        if beta2 is None:
            raise ValueError(
                "bias_corrected_rms needs LeafStats.second_moment_decay, which this features "
                "component leaves None; fill it in the features' update_leaf (as `adafactor` does)"
            )
        t = stats.step.astype(jnp.float32) + 1.0
        # A decay rounded to 1 (float32) leaves v = 0 for ever; the floor keeps 0 / 0 out.
        correction = jnp.maximum(1.0 - jnp.power(beta2, t), 1e-12)
        return x * lax.rsqrt(stats.second_moment / correction + self.eps)
