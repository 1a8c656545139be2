"""The ``lstm_lm`` task: a byte-level LSTM language model.

The reference's ``RNNLM_lm1bbytes_Patch32_LSTM256_Embed128`` (the paper's
Figure 4c: a 256-unit LSTM on LM1B) is this task with its defaults on LM1B
bytes: embedding 128, 256 units, sequences of 32 bytes, batch 128. With
``e_t`` the embedding of byte ``x_t`` and ``h_0 = c_0 = 0``::

    [i, g, f, o] = [e_t, h_{t-1}] W + b                    (W: [E + H, 4H])
    c_t = sigmoid(f + 1) * c_{t-1} + sigmoid(i) * tanh(g)  (forget-gate bias 1, as haiku's LSTM)
    h_t = sigmoid(o) * tanh(c_t)
    logits_t = h_t W_out + b_out

run with ``lax.scan`` over time. Parameters::

    V E  +  (E + H) 4H + 4H  +  H V + V     (492,800 at V=256, E=128, H=256)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

import lofw
from lofw_plugins.task.language import AbstractLanguageModelTask, text_geometry
from lofw_plugins.task.layers import Draw, linear, linear_params, materialize

Params = dict[str, Float[Array, "..."] | dict[str, Float[Array, "..."]]]


class LSTMLM(AbstractLanguageModelTask):
    """Embedding, one LSTM layer, linear read-out to the vocabulary.

    Args:
        dataset: a text dataset (supplied by ``build_task``); it fixes the
            sequence length and the vocabulary.
        embed_size: width of the byte embedding.
        hidden_size: LSTM units.
        batch_size: sequences per training batch.

    Parameters (``init``): ``{"embed": [V, E], "lstm": {"w": [E + H, 4H], "b": [4H]},
    "output": {"w": [H, V], "b": [V]}}``; embedding ``N(0, 1)`` cut at +-2, weights
    truncated-normal ``1/sqrt(fan_in)``, biases zero.
    """

    dataset: lofw.AbstractDataset
    embed_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    sequence_length: int = eqx.field(static=True)
    vocab_size: int = eqx.field(static=True)

    def __init__(self, dataset: lofw.AbstractDataset, embed_size: int = 128, hidden_size: int = 256,
                 batch_size: int = 128):
        if min(int(embed_size), int(hidden_size), int(batch_size)) < 1:
            raise ValueError("embed_size, hidden_size and batch_size must be positive")
        self.dataset = dataset
        self.sequence_length, self.vocab_size = text_geometry(dataset, "lstm_lm")
        self.embed_size, self.hidden_size, self.batch_size = int(embed_size), int(hidden_size), int(batch_size)

    def init(self, key: PRNGKeyArray) -> Params:
        """Embedding ``N(0, 1)`` cut at +-2; truncated-normal ``1/sqrt(fan_in)`` weights; zero biases."""
        e, h, v = self.embed_size, self.hidden_size, self.vocab_size
        return materialize(key, {
            "embed": Draw((v, e)),
            "lstm": linear_params(e + h, 4 * h),
            "output": linear_params(h, v),
        })

    def logits(self, params: Params, inputs: Int[Array, "b t"]) -> Float[Array, "b t v"]:
        """Embed, scan the LSTM over time, read out every step."""
        x = params["embed"][inputs.T]  # [T, B, E]: scan runs over the leading axis
        zeros = jnp.zeros((inputs.shape[0], self.hidden_size), x.dtype)

        def cell(carry, x_t):
            h, c = carry
            i, g, f, o = jnp.split(linear(params["lstm"], jnp.concatenate([x_t, h], -1)), 4, axis=-1)
            c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        _, hs = jax.lax.scan(cell, (zeros, zeros), x)
        return linear(params["output"], jnp.swapaxes(hs, 0, 1))
