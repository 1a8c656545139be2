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

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
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
    """Accumulators of one tensor.

    ``momentum`` has the decays on its leading axis, so that each momentum is
    a contiguous array (XLA's CPU loops vectorise over it; a trailing decay
    axis makes every read a stride-3 gather). The factored statistics keep
    the decays on their trailing axis. ``row``/``col`` are set for tensors of
    rank >= 2, ``diag`` otherwise.
    """

    momentum: Float[Array, "n_momenta ..."]
    second_moment: Float[Array, "..."]
    row: Float[Array, "... n_factored"] | None
    col: Float[Array, "... n_factored"] | None
    diag: Float[Array, "... n_factored"] | None


ROW_LENGTHS = (128, 256, 512, 64, 32)
MIN_ROWS = 4


def _row_length(size: int) -> int | None:
    """A row length that divides ``size`` into at least ``MIN_ROWS`` rows, or None."""
    for length in ROW_LENGTHS:
        if size % length == 0 and size >= MIN_ROWS * length:
            return length
    return None


def _variadic_sum(xs: tuple[Array, ...], axes: tuple[int, ...]) -> tuple[Array, ...]:
    zeros = tuple(jnp.zeros((), x.dtype) for x in xs)
    return lax.reduce(xs, zeros, lambda a, b: tuple(x + y for x, y in zip(a, b)), axes)


@jax.custom_jvp
def _sums(xs: tuple[Array, ...]) -> tuple[Array, ...]:
    """``sum(x)`` of each array (all of one shape), in two variadic reductions.

    Each array is viewed as rows of ``_row_length`` elements; one reduction
    sums every array along the rows, a second sums the row totals.
    XLA compiles a variadic reduction to one loop that accumulates every sum
    (one pass over the tensor, not one per array), and the row-wise stage
    spreads that loop over the CPU cores, where a reduction to scalars runs on
    one (docs/performance.md has the measurement). The summation order differs from a flat
    sum by float32 rounding (about 1e-7 relative). A variadic reduce has no
    transpose rule, so the tangent is written with ordinary sums (used only
    when differentiating, e.g. truncated backprop through the optimizer).
    """
    length = _row_length(xs[0].size)
    if length is None:
        return _variadic_sum(xs, tuple(range(xs[0].ndim)))
    rows = tuple(x.reshape(-1, length) for x in xs)
    return _variadic_sum(_variadic_sum(rows, (1,)), (0,))


@_sums.defjvp
def _sums_jvp(primals, tangents):
    (xs,), (dxs,) = primals, tangents
    return _sums(xs), tuple(jnp.sum(dx) for dx in dxs)


def _rms_scales(squares: list[Array]) -> Array:
    """``1 / sqrt(eps + mean(c**2))`` per channel ``c``, over the whole tensor.

    ``squares[k]`` is ``c_k**2`` at the channel's own shape: the mean of a
    factored channel over the tensor equals its mean over the factored
    vector, so only full-size channels are reduced over the tensor (in one
    variadic reduction); the others are reduced at their own shape. The
    summation order differs from a reduction of the broadcast channel, so the
    two agree to float32 rounding (about 1e-7 relative), not bitwise.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, c in enumerate(squares):
        groups.setdefault(c.shape, []).append(k)
    sums: list[Array | None] = [None] * len(squares)
    for ks in groups.values():
        for k, s in zip(ks, _sums(tuple(squares[k] for k in ks))):
            sums[k] = s
    # One division of the stacked sums: a division per sum is one tiny XLA
    # kernel per channel (28 launches per tensor).
    sizes = np.asarray([max(1, math.prod(c.shape)) for c in squares], np.float32)
    return lax.rsqrt(NORM_EPS + jnp.stack(sums) / sizes)


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
            momentum=zeros((len(self.momentum_decays),) + shape),
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
        new_state = self._accumulate(grad, state)
        channels, squares = _channels(grad, param, new_state)
        t = step.astype(jnp.float32)
        globals_ = jnp.tanh(t / jnp.asarray(self.time_scales, jnp.float32) - 1.0)
        stats = lofw.LeafStats(
            grad=grad,
            param=param,
            momentum=jnp.stack(list(new_state.momentum), axis=-1),
            second_moment=new_state.second_moment,
            step=step,
            second_moment_decay=self.decays()[1],
        )
        features = lofw.LeafFeatures(tuple(channels), _rms_scales(squares), globals_)
        return new_state, stats, features

    def _accumulate(self, grad: Array, state: AdafactorLeafState) -> AdafactorLeafState:
        """One EMA step of every accumulator (star_spec.md 1.4)."""
        beta_m, beta_v, beta_f = self.decays()
        gsq = jnp.square(grad) + EPS_GSQ
        row = col = diag = None
        dims = factored_dims(grad.shape)
        if dims is None:
            diag = beta_f * state.diag + (1.0 - beta_f) * gsq[..., None]
        else:
            row, col = update_factored(state.row, state.col, gsq, beta_f, *dims)
        return AdafactorLeafState(
            momentum=_leading(beta_m, grad.ndim) * state.momentum + _leading(1.0 - beta_m, grad.ndim) * grad,
            second_moment=beta_v * state.second_moment + (1.0 - beta_v) * jnp.square(grad),
            row=row,
            col=col,
            diag=diag,
        )


def _leading(x: Array, ndim: int) -> Array:
    """``x`` of shape ``(n,)`` as ``(n, 1, ..., 1)``, to broadcast over a leading axis."""
    return x.reshape(x.shape + (1,) * ndim)


def _channels(grad: Array, param: Array, s: AdafactorLeafState) -> tuple[list[Array], list[Array]]:
    """The 28 raw channels, in the order of the module docstring, and their squares.

    Row and column statistics stay in factored shape (a size-1 axis where the
    tensor has its largest or second largest axis). The squares of the
    channels built on ``rsqrt(v + eps)`` are written with ``1 / (v + eps)``:
    equal to float32 rounding, and the normalisation's reduction then shares
    no expensive value with the network's loop, so XLA materialises neither
    ``rsqrt(v + eps)`` nor its products with the momenta.
    """
    moms = list(s.momentum)
    rsqrt_v = lax.rsqrt(s.second_moment + RMS_EPS)
    inv_v = 1.0 / (s.second_moment + RMS_EPS)
    # Operations on the statistics run over their trailing decay axis, split
    # last: one small XLA kernel each instead of one per decay.
    dims = factored_dims(grad.shape)
    if dims is None:
        k = s.diag.shape[-1]
        split = lambda x: [x[..., i] for i in range(k)]  # noqa: E731
        rows = cols = split(s.diag)
        fac_g = split(grad[..., None] * lax.rsqrt(jnp.maximum(s.diag + DIAG_EPS, DIAG_EPS)))
        fac_m = [m * r for m, r in zip(moms, split(lax.rsqrt(s.diag + RMS_EPS)))]
        rsqrt_rows = rsqrt_cols = split(lax.rsqrt(s.diag + FACTORED_RSQRT_EPS))
    else:
        d1, d0 = dims
        row_f, col_f = factors(s.row, s.col, d1, d0)
        k = row_f.shape[-1]
        split = lambda x, axis: [jnp.expand_dims(x[..., i], axis) for i in range(k)]  # noqa: E731
        rows, cols = split(s.row, d0), split(s.col, d1)
        rsqrt_rows = split(lax.rsqrt(s.row + FACTORED_RSQRT_EPS), d0)
        rsqrt_cols = split(lax.rsqrt(s.col + FACTORED_RSQRT_EPS), d1)
        fac_g = [grad * rf * cf for rf, cf in zip(split(row_f, d0), split(col_f, d1))]
        fac_m = [m * rf * cf for m, rf, cf in zip(moms, split(row_f, d0), split(col_f, d1))]
    channels = (
        [grad, param, *moms, s.second_moment]
        + [m * rsqrt_v for m in moms]
        + [rsqrt_v]
        + fac_g
        + rows
        + cols
        + rsqrt_rows
        + rsqrt_cols
        + fac_m
    )
    squares = (
        [jnp.square(c) for c in [grad, param, *moms, s.second_moment]]
        + [jnp.square(m) * inv_v for m in moms]
        + [inv_v]
        + [jnp.square(c) for c in fac_g + rows + cols + rsqrt_rows + rsqrt_cols + fac_m]
    )
    return channels, squares
