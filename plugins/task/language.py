"""What every byte-level language-model task shares: batches, loss, normaliser.

A batch is ``{"tokens": int32 [B, L + 1]}`` from a text dataset (see
``lofw_plugins.dataset.text_dataset``); the model reads ``x = tokens[:, :-1]``
and predicts ``y = tokens[:, 1:]``. Loss (mean cross-entropy per token)::

    L = -(1 / (B L)) sum_{b, t} log softmax(f(x_b)_t)[y_{b, t}]

where ``f(x)_t`` may depend on ``x_1 .. x_t`` only (causal). Meta-loss
normaliser, as for the classifiers with the vocabulary ``V`` in place of the
classes::

    normalizer(L) = clip(L, 0, 1.5 ln V),  NaN / +-inf -> 1.5 ln V

``ln V`` (``ln 256`` for bytes) is the loss of a uniform guess (``chance_loss``).
"""

import abc
import math

import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

import lofw
from lofw import Batch, ConfigError
from lofw_plugins.task.classification import AbstractChanceNormalisedTask


def text_geometry(dataset: lofw.AbstractDataset, task: str) -> tuple[int, int]:
    """``(sequence_length, vocab_size)`` of a text dataset, with a clear error if it is not one."""
    vocab = getattr(dataset, "vocab_size", None)
    length = getattr(dataset, "sequence_length", None)
    if not isinstance(vocab, int) or not isinstance(length, int):
        raise ConfigError(
            f"task {task!r} needs a text dataset with integer `vocab_size` and `sequence_length` "
            f"attributes (python_source, lm1b); {type(dataset).__name__} has {vocab!r} and {length!r}"
        )
    batch = jax.eval_shape(lambda k: dataset.sample(k, 1, "train"), jax.random.key(0))
    if not isinstance(batch, dict) or "tokens" not in batch or batch["tokens"].shape != (1, length + 1):
        raise ConfigError(f"task {task!r} needs batches {{'tokens': [B, {length + 1}]}}, got {batch}")
    return length, vocab


def token_cross_entropy(logits: Float[Array, "b t v"], targets: Int[Array, "b t"]) -> Float[Array, ""]:
    """Mean over batch and time of ``-log softmax(logits)[target]``."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, targets[..., None], axis=-1))


class AbstractLanguageModelTask(AbstractChanceNormalisedTask):
    """A causal model ``logits(params, x)`` trained on next-byte cross-entropy.

    Final subclasses hold ``dataset``, ``batch_size``, ``sequence_length`` and
    ``vocab_size`` and implement ``init`` and ``logits``.
    """

    dataset: AbstractVar[lofw.AbstractDataset]
    batch_size: AbstractVar[int]
    sequence_length: AbstractVar[int]
    vocab_size: AbstractVar[int]

    @abc.abstractmethod
    def logits(self, params: PyTree[Float[Array, "..."]], inputs: Int[Array, "b t"]) -> Float[Array, "b t v"]:
        """Next-token scores; position ``t`` sees ``inputs[:, :t + 1]`` only."""

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> Batch:
        """``batch_size`` windows of ``sequence_length + 1`` bytes of ``split``."""
        return self.dataset.sample(key, self.batch_size, split)

    def loss(self, params: PyTree[Float[Array, "..."]], batch: Batch) -> Float[Array, ""]:
        """Mean next-token cross-entropy (see the module docs)."""
        tokens = batch["tokens"]
        return token_cross_entropy(self.logits(params, tokens[:, :-1]), tokens[:, 1:])

    @property
    def chance_loss(self) -> float:
        """``ln V``: the loss of a uniform guess over the vocabulary."""
        return math.log(self.vocab_size)

