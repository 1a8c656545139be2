"""``small_batch``: the wrapped task trained on the first ``batch_size`` examples of each batch.

Smaller batches make noisier gradients with the same model and data: an
augmentation that asks a learned optimizer to cope with the gradient noise
of a batch size it was not meta-trained at. Every leaf of a batch is cut to
its first ``batch_size`` entries along axis 0 (the examples of an image
batch, the sequences of a language-model batch); the loss, normaliser and
family are the wrapped task's. The wrapped task still draws its full batch
(the cut is exact, not faster).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
from jaxtyping import PRNGKeyArray

import lofw
from lofw_plugins.task.wrapper import AbstractTaskWrapper


class SmallBatch(AbstractTaskWrapper):
    """Args: ``task`` (a registry name or an inline task), ``batch_size`` (at
    most the wrapped task's batch)."""

    batch_size: int = eqx.field(static=True)

    def __init__(self, task: lofw.AbstractTask, batch_size: int):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer; got {batch_size!r}")
        shapes = jax.eval_shape(task.sample_batch, jax.random.PRNGKey(0))
        sizes = {x.shape[0] if x.shape else 0 for x in jax.tree_util.tree_leaves(shapes)}
        if min(sizes, default=0) < batch_size:
            raise ValueError(f"`batch_size` {batch_size} exceeds the wrapped task's batch "
                             f"({min(sizes, default=0)} examples)")
        self.task, self.batch_size = task, batch_size

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> Any:
        return jax.tree_util.tree_map(lambda x: x[: self.batch_size], self.task.sample_batch(key, split))
