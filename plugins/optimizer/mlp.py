"""The ``mlp`` network: a small per-element MLP with named heads.

The first layer is folded with the features: each channel's normalisation
scale multiplies its weight row and the shared (step) features fold into the
bias, so the layer is ``sum_k channel_k * w'_kj + b'_j`` over broadcastable
channels, written as multiply-adds that XLA fuses into one element-wise loop.
The ``param.shape + (n_inputs,)`` input tensor is never built.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

import lofw


def _linear_sum(xs, w_col, bias):
    out = xs[0] * w_col[0]
    for x, w in zip(xs[1:], w_col[1:]):
        out = out + x * w
    return out + bias


class MLP(lofw.AbstractNetwork):
    """``n_inputs -> hidden_sizes (ReLU) -> len(heads)``, shared by every element.

    Weights are truncated-normal (cut at two standard deviations) scaled by
    ``1/sqrt(fan_in)``, biases zero, as in haiku's ``Linear``.

    Args:
        n_inputs: width of the features.
        heads: names of the outputs, in order.
        key: PRNG key for the weights.
        hidden_sizes: widths of the hidden layers.
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
    ):
        sizes = (int(n_inputs), *(int(h) for h in hidden_sizes), len(heads))
        keys = jax.random.split(key, len(sizes) - 1)
        self.weights = tuple(
            jax.random.truncated_normal(k, -2.0, 2.0, (i, o), jnp.float32) / math.sqrt(i)
            for k, i, o in zip(keys, sizes[:-1], sizes[1:])
        )
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
        h = [
            jax.nn.relu(_linear_sum(features.channels, w_channels[:, j], b0[j]))
            for j in range(w0.shape[1])
        ]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights[1:], self.biases[1:]), start=1):
            h = [_linear_sum(h, w[:, j], b[j]) for j in range(w.shape[1])]
            if i < last:
                h = [jax.nn.relu(x) for x in h]
        return dict(zip(self.heads, h))
