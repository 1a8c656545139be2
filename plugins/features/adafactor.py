"""The ``adafactor`` features: STAR's 28 optimizer features and 11 step features.

Per tensor (star_spec.md 1.4-1.5), with momenta ``m_i``, the second-moment
EMA ``v`` and the factored statistics ``r_i`` (rows), ``c_i`` (columns) at
three Adafactor decays, the 28 channels are, in order::

    g, p, m_0..2, v, m_i*rsqrt(v+1e-6) (3), rsqrt(v+1e-6), fac_g_i (3),
    r_i (3), c_i (3), rsqrt(r_i+1e-8) (3), rsqrt(c_i+1e-8) (3), m_i*rf_i*cf_i (3)

where ``fac_g_i`` is the Adafactor-preconditioned gradient and ``rf_i``,
``cf_i`` its row and column factors. Tensors of rank < 2 use the full EMA
``d_i`` for both ``r_i`` and ``c_i`` and ``m_i * rsqrt(d_i + 1e-6)`` as the
last three. Each channel is divided by its root-mean-square over the tensor
(eps 1e-5); the 11 step features ``tanh(t / tau - 1)`` are appended
unnormalised. Nothing is bias-corrected.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, Int

import lofw
from lofw_plugins.features.decays import decay_from_offset
from lofw_plugins.features.factored import EPS_GSQ, factored_dims, factors, update_factored

TIME_SCALES = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000)
NORM_EPS = 1e-5
RMS_EPS = 1e-6
FACTORED_RSQRT_EPS = 1e-8
DIAG_EPS = 1e-9


class AdafactorLeafState(eqx.Module):
    """Accumulators of one tensor; the trailing axis indexes the decays.

    ``row``/``col`` are set for tensors of rank >= 2, ``diag`` otherwise.
    """

    momentum: Float[Array, "... n_momenta"]
    second_moment: Float[Array, "..."]
    row: Float[Array, "... n_factored"] | None
    col: Float[Array, "... n_factored"] | None
    diag: Float[Array, "... n_factored"] | None


def _rms_scale(x: Array) -> Array:
    return lax.rsqrt(NORM_EPS + jnp.mean(jnp.square(x)))


class AdafactorFeatures(lofw.AbstractFeatures):
    """STAR's features, with meta-learned decay offsets (7 meta-parameters).

    Args:
        momentum_decays: initial momentum decays, ascending.
        rms_decay: initial decay of the second-moment EMA.
        adafactor_decays: initial decays of the factored statistics; as many
            as momenta (the last three channels pair them up).
        time_scales: the ``tau`` of the step features.
    """

    momentum_offsets: Float[Array, " n_momenta"]
    rms_offset: Float[Array, " 1"]
    adafactor_offsets: Float[Array, " n_factored"]
    momentum_decays: tuple[float, ...] = eqx.field(static=True)
    rms_decay: float = eqx.field(static=True)
    adafactor_decays: tuple[float, ...] = eqx.field(static=True)
    time_scales: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        momentum_decays: tuple[float, ...] = (0.9, 0.99, 0.999),
        rms_decay: float = 0.999,
        adafactor_decays: tuple[float, ...] = (0.9, 0.99, 0.999),
        time_scales: tuple[float, ...] = TIME_SCALES,
    ):
        self.momentum_decays = tuple(float(b) for b in momentum_decays)
        self.rms_decay = float(rms_decay)
        self.adafactor_decays = tuple(float(b) for b in adafactor_decays)
        self.time_scales = tuple(float(t) for t in time_scales)
        self.momentum_offsets = jnp.zeros(len(self.momentum_decays), jnp.float32)
        self.rms_offset = jnp.zeros(1, jnp.float32)
        self.adafactor_offsets = jnp.zeros(len(self.adafactor_decays), jnp.float32)

    def __check_init__(self):
        if list(self.momentum_decays) != sorted(self.momentum_decays):
            raise ValueError(f"momentum_decays must be ascending, got {self.momentum_decays}")
        if len(self.adafactor_decays) != len(self.momentum_decays):
            raise ValueError(
                "adafactor_decays and momentum_decays must have the same length "
                f"(they are paired), got {self.adafactor_decays} and {self.momentum_decays}"
            )

    @property
    def n_inputs(self) -> int:
        # g, p, v, rsqrt(v) and eight channels per momentum/factored decay pair.
        return 4 + 8 * len(self.momentum_decays) + len(self.time_scales)

    def decays(self) -> tuple[Array, Array, Array]:
        """The effective (momentum, second-moment, factored) decays."""
        return (
            decay_from_offset(self.momentum_decays, self.momentum_offsets, clip=False),
            decay_from_offset((self.rms_decay,), self.rms_offset, clip=True)[0],
            decay_from_offset(self.adafactor_decays, self.adafactor_offsets, clip=True),
        )

    def init_leaf(self, param: Float[Array, "..."]) -> AdafactorLeafState:
        shape, k = param.shape, len(self.adafactor_decays)
        dims = factored_dims(shape)
        zeros = lambda s: jnp.zeros(s, jnp.float32)  # noqa: E731
        if dims is None:
            row = col = None
            diag = zeros(shape + (k,))
        else:
            d1, d0 = dims
            row = zeros(tuple(s for i, s in enumerate(shape) if i != d0) + (k,))
            col = zeros(tuple(s for i, s in enumerate(shape) if i != d1) + (k,))
            diag = None
        return AdafactorLeafState(
            momentum=zeros(shape + (len(self.momentum_decays),)),
            second_moment=zeros(shape),
            row=row,
            col=col,
            diag=diag,
        )

    def update_leaf(
        self,
        grad: Float[Array, "..."],
        param: Float[Array, "..."],
        state: AdafactorLeafState,
        step: Int[Array, ""],
    ) -> tuple[AdafactorLeafState, lofw.LeafStats, lofw.LeafFeatures]:
        beta_m, beta_v, beta_f = self.decays()
        momentum = beta_m * state.momentum + (1.0 - beta_m) * grad[..., None]
        v = beta_v * state.second_moment + (1.0 - beta_v) * jnp.square(grad)
        gsq = jnp.square(grad) + EPS_GSQ
        moms = [momentum[..., i] for i in range(momentum.shape[-1])]
        rsqrt_v = lax.rsqrt(v + RMS_EPS)

        dims = factored_dims(grad.shape)
        if dims is None:
            diag = beta_f * state.diag + (1.0 - beta_f) * gsq[..., None]
            row = col = None
            ds = [diag[..., i] for i in range(diag.shape[-1])]
            fac_g = [grad * lax.rsqrt(jnp.maximum(d + DIAG_EPS, DIAG_EPS)) for d in ds]
            rows = cols = ds
            fac_m = [m * lax.rsqrt(d + RMS_EPS) for m, d in zip(moms, ds)]
        else:
            d1, d0 = dims
            row, col = update_factored(state.row, state.col, gsq, beta_f, d1, d0)
            diag = None
            row_f, col_f = factors(row, col, d1, d0)
            k = row.shape[-1]
            rows = [jnp.expand_dims(row[..., i], d0) for i in range(k)]
            cols = [jnp.expand_dims(col[..., i], d1) for i in range(k)]
            rfs = [jnp.expand_dims(row_f[..., i], d0) for i in range(k)]
            cfs = [jnp.expand_dims(col_f[..., i], d1) for i in range(k)]
            fac_g = [grad * rf * cf for rf, cf in zip(rfs, cfs)]
            fac_m = [m * rf * cf for m, rf, cf in zip(moms, rfs, cfs)]

        channels = (
            [grad, param, *moms, v]
            + [m * rsqrt_v for m in moms]
            + [rsqrt_v]
            + fac_g
            + rows
            + cols
            + [lax.rsqrt(r + FACTORED_RSQRT_EPS) for r in rows]
            + [lax.rsqrt(c + FACTORED_RSQRT_EPS) for c in cols]
            + fac_m
        )
        scales = jnp.stack([_rms_scale(c) for c in channels])
        t = step.astype(jnp.float32)
        globals_ = jnp.tanh(t / jnp.asarray(self.time_scales, jnp.float32) - 1.0)
        new_state = AdafactorLeafState(momentum=momentum, second_moment=v, row=row, col=col, diag=diag)
        stats = lofw.LeafStats(grad=grad, param=param, momentum=momentum, second_moment=v, step=step)
        return new_state, stats, lofw.LeafFeatures(tuple(channels), scales, globals_)
