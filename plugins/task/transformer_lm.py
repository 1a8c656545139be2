"""The ``transformer_lm`` task: a byte-level decoder-only transformer.

The paper's Figure 4d (a 5-layer, 256-wide decoder-only transformer on LM1B;
the reference's ``TransformerLM_LM1B_5layer_256width``: 8 heads, batch 32,
sequences of 128) is this task with its defaults on LM1B bytes. Pre-LayerNorm
blocks on ``x_0 = E[tokens] + P``::

    a   = LN_1(x);  q, k, v = a W_q + b_q, a W_k + b_k, a W_v + b_v   (split into heads)
    x  <- x + concat_heads(softmax(q k^T / sqrt(d_head) + M) v) W_o + b_o
    x  <- x + gelu(LN_2(x) W_1 + b_1) W_2 + b_2                         (hidden r D)
    logits = LN_f(x) W_out + b_out

``gelu`` is the tanh approximation (``jax.nn.gelu``'s default). ``M`` is the
causal mask (``-inf`` above the diagonal), so position ``t``
attends to positions ``<= t`` only. ``P`` is a learned table ``[L, D]`` or the
fixed sinusoids ``P[t, 2i] = sin(t / 10000^(2i/D))``, ``P[t, 2i+1] =
cos(t / 10000^(2i/D))``. No dropout (the loss takes no key; the reference
used 0.1). Parameters, with ``n`` layers, width ``D``, MLP ratio ``r``::

    V D  [+ L D learned positions]
    + n (2D + 4(D^2 + D) + 2D + 2 r D^2 + r D + D)
    + 2D + D V + V
"""

from __future__ import annotations

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

import lofw
from lofw_plugins.task.language import AbstractLanguageModelTask, text_geometry
from lofw_plugins.task.layers import Draw, layer_norm, layer_norm_params, linear, linear_params, materialize

Positions = Literal["learned", "sinusoidal"]
Params = dict[str, Float[Array, "..."] | dict]


def sinusoids(length: int, width: int) -> Float[Array, "l d"]:
    """``P[t, 2i] = sin(t / 10000^(2i/D))``, ``P[t, 2i+1] = cos(t / 10000^(2i/D))``."""
    t = np.arange(length)[:, None]
    rate = 10000.0 ** (-np.arange(0, width, 2) / width)
    table = np.zeros((length, width), np.float32)
    table[:, 0::2] = np.sin(t * rate)
    table[:, 1::2] = np.cos(t * rate)
    return jnp.asarray(table)


class TransformerLM(AbstractLanguageModelTask):
    """Decoder-only transformer with pre-LayerNorm blocks and causal self-attention.

    Args:
        dataset: a text dataset (supplied by ``build_task``); it fixes the
            sequence length and the vocabulary.
        num_layers: transformer blocks.
        width: model width ``D``.
        num_heads: attention heads (``D`` must be a multiple).
        mlp_ratio: hidden width of the MLP as a multiple of ``D``.
        positions: ``"learned"`` or ``"sinusoidal"`` position embeddings.
        batch_size: sequences per training batch.

    Parameters (``init``): ``{"embed": [V, D], ["positions": [L, D]], "layer_<i>":
    {"ln_1", "query", "key", "value", "output", "ln_2", "mlp_in", "mlp_out"},
    "ln_final", "head"}``; embeddings ``N(0, 1)`` cut at +-2, weights
    truncated-normal ``1/sqrt(fan_in)``, biases zero, LayerNorm scales one.
    """

    dataset: lofw.AbstractDataset
    num_layers: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    mlp_ratio: int = eqx.field(static=True)
    positions: str = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    sequence_length: int = eqx.field(static=True)
    vocab_size: int = eqx.field(static=True)

    def __init__(self, dataset: lofw.AbstractDataset, num_layers: int = 5, width: int = 256, num_heads: int = 8,
                 mlp_ratio: int = 4, positions: Positions = "learned", batch_size: int = 32):
        if min(int(num_layers), int(width), int(num_heads), int(mlp_ratio), int(batch_size)) < 1:
            raise ValueError("num_layers, width, num_heads, mlp_ratio and batch_size must be positive")
        if int(width) % int(num_heads):
            raise ValueError(f"width {width} is not a multiple of num_heads {num_heads}")
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"unknown positions {positions!r}; valid choices: 'learned', 'sinusoidal'")
        if positions == "sinusoidal" and int(width) % 2:
            raise ValueError(f"sinusoidal positions need an even width, got {width}")
        self.dataset = dataset
        self.sequence_length, self.vocab_size = text_geometry(dataset, "transformer_lm")
        self.num_layers, self.width, self.num_heads = int(num_layers), int(width), int(num_heads)
        self.mlp_ratio, self.positions, self.batch_size = int(mlp_ratio), positions, int(batch_size)

    def init(self, key: PRNGKeyArray) -> Params:
        """See the class docs for the layout and initialisation."""
        d, hidden = self.width, self.mlp_ratio * self.width
        params: dict = {"embed": Draw((self.vocab_size, d))}
        if self.positions == "learned":
            params["positions"] = Draw((self.sequence_length, d))
        for i in range(self.num_layers):
            params[f"layer_{i}"] = {
                "ln_1": layer_norm_params(d),
                **{name: linear_params(d, d) for name in ("query", "key", "value", "output")},
                "ln_2": layer_norm_params(d),
                "mlp_in": linear_params(d, hidden),
                "mlp_out": linear_params(hidden, d),
            }
        params["ln_final"] = layer_norm_params(d)
        params["head"] = linear_params(d, self.vocab_size)
        return materialize(key, params)

    def _attention(self, p: dict, a: Float[Array, "b t d"]) -> Float[Array, "b t d"]:
        b, t, d = a.shape
        heads = lambda x: x.reshape(b, t, self.num_heads, d // self.num_heads)  # noqa: E731
        q, k, v = (heads(linear(p[name], a)) for name in ("query", "key", "value"))
        scores = jnp.einsum("bqhc,bkhc->bhqk", q, k) / math.sqrt(d // self.num_heads)
        causal = jnp.tril(jnp.ones((t, t), bool))
        scores = jnp.where(causal, scores, -jnp.inf)
        out = jnp.einsum("bhqk,bkhc->bqhc", jax.nn.softmax(scores, axis=-1), v)
        return linear(p["output"], out.reshape(b, t, d))

    def logits(self, params: Params, inputs: Int[Array, "b t"]) -> Float[Array, "b t v"]:
        """Embed plus positions, pre-LN blocks, final LayerNorm, linear head."""
        t = inputs.shape[1]
        pos = params["positions"][:t] if self.positions == "learned" else sinusoids(t, self.width)
        x = params["embed"][inputs] + pos
        for i in range(self.num_layers):
            p = params[f"layer_{i}"]
            x = x + self._attention(p, layer_norm(x, **p["ln_1"]))
            h = jax.nn.gelu(linear(p["mlp_in"], layer_norm(x, **p["ln_2"])))
            x = x + linear(p["mlp_out"], h)
        return linear(params["head"], layer_norm(x, **params["ln_final"]))
