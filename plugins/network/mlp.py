"""The ``mlp`` network: a small per-element MLP with named heads.

The first layer is folded with the features: each channel's normalisation
scale multiplies its weight row and the shared (step) features fold into the
bias, so unit ``j`` is ``sum_k channel_k * w'_kj + b'_j`` over broadcastable
channels; the ``param.shape + (n_inputs,)`` input tensor is never built.

Channels smaller than the tensor (factored row/column statistics) meet the
first layer as one small matrix product per shape (``[..., K] @ [K, units]``
on the row or column vectors). XLA never fuses a dot into an elementwise
loop, so these 48 of a matrix's 112 first-layer multiply-adds stay on the
vectors instead of being recomputed for every element (which XLA does with
the broadcast form). Every hidden unit is then its own array of the tensor's
shape, so the per-element part of all layers, the heads and the optimizer's
update compile to one loop vectorised along the tensor's contiguous axis; the
price is a larger traced program, so a longer compile (measurements in
docs/performance.md).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

import lofw


def _linear_sum(xs, w, bias):
    """``sum_k xs[k] * w[k] + bias`` with broadcasting, as a chain of adds."""
    out = xs[0] * w[0]
    for x, w_k in zip(xs[1:], w[1:]):
        out = out + x * w_k
    return out + bias


class MLP(lofw.AbstractNetwork):
    """``n_inputs -> hidden_sizes (ReLU) -> len(heads)``, shared by every element.

    Weights are truncated-normal (cut at two standard deviations) scaled by
    ``1/sqrt(fan_in)``, biases zero, as in haiku's ``Linear`` (the reference).

    ``zero_heads`` is lofw's option, not the reference's: the last layer's
    column of each named head starts at zero, so the head outputs 0 for every
    input until meta-training moves it. With ``zero_heads: [direction]`` an
    untrained STAR is exactly Hyperparam (its blackbox term is 0); see
    docs/meta_init.md for what it does to meta-training.

    Args:
        n_inputs: width of the features.
        heads: names of the outputs, in order.
        key: PRNG key for the weights.
        hidden_sizes: widths of the hidden layers.
        zero_heads: heads whose last-layer weights start at zero.
    """

    weights: tuple[Float[Array, "fan_in fan_out"], ...]
    biases: tuple[Float[Array, " fan_out"], ...]
    heads: tuple[str, ...] = eqx.field(static=True)

    def __init__(
        self,
        n_inputs: int,
        heads: tuple[str, ...],
        key: PRNGKeyArray,
        hidden_sizes: tuple[int, ...] = (4, 4),
        zero_heads: tuple[str, ...] = (),
    ):
        unknown = [h for h in zero_heads if h not in heads]
        if unknown:
            raise ValueError(f"zero_heads names {unknown}, which are not heads of this network {tuple(heads)}")
        sizes = (int(n_inputs), *(int(h) for h in hidden_sizes), len(heads))
        keys = jax.random.split(key, len(sizes) - 1)
        weights = [
            jax.random.truncated_normal(k, -2.0, 2.0, (i, o), jnp.float32) / math.sqrt(i)
            for k, i, o in zip(keys, sizes[:-1], sizes[1:])
        ]
        keep = jnp.asarray([h not in zero_heads for h in heads], jnp.float32)
        weights[-1] = weights[-1] * keep
        self.weights = tuple(weights)
        self.biases = tuple(jnp.zeros((o,), jnp.float32) for o in sizes[1:])
        self.heads = tuple(heads)

    def __check_init__(self):
        if not self.heads:
            raise ValueError("the mlp network needs at least one head")

    def __call__(self, features: lofw.LeafFeatures) -> dict[str, Array]:
        n = len(features.channels)
        w0 = self.weights[0]
        w_channels = w0[:n] * features.scales[:, None]
        b0 = self.biases[0] + features.globals @ w0[n:]
        groups: dict[tuple[int, ...], list[int]] = {}
        for k, c in enumerate(features.channels):
            groups.setdefault(c.shape, []).append(k)
        full, *smaller = sorted(groups, key=lambda shape: -math.prod(shape))
        # [..., units] at each smaller shape, materialised by the dot.
        small_parts = [
            jnp.stack([features.channels[k] for k in groups[s]], axis=-1) @ w_channels[jnp.asarray(groups[s])]
            for s in smaller
        ]
        hidden = []
        for j in range(w0.shape[1]):
            h = _linear_sum([features.channels[k] for k in groups[full]], [w_channels[k, j] for k in groups[full]], b0[j])
            for part in small_parts:
                h = h + part[..., j]
            hidden.append(jax.nn.relu(h))
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights[1:], self.biases[1:]), start=1):
            hidden = [_linear_sum(hidden, w[:, j], b[j]) for j in range(w.shape[1])]
            if i < last:
                hidden = [jax.nn.relu(h) for h in hidden]
        return {name: hidden[i] for i, name in enumerate(self.heads)}
