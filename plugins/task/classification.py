"""What every image-classification task shares: batches, loss, normaliser, init.

Loss (mean softmax cross-entropy over the batch, labels ``y``):

    L = -(1/B) sum_b log softmax(f(x_b))[y_b]

Meta-loss normaliser (the reference's ``ImageMLP_*`` / ``Conv_*`` tasks):

    normalizer(L) = clip(L, 0, 1.5 ln K),  NaN / +-inf -> 1.5 ln K

``ln K`` is the loss of a uniform guess over ``K`` classes (``chance_loss``),
so a diverged inner run costs a bounded amount of meta-loss. The reference
hard-codes ``K = 10``; lofw uses the dataset's ``K``, which is the same on
every ten-class dataset and keeps the bound above chance on ImageNet (1000).
"""

import abc
import math

import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

import lofw
from lofw import Batch, ConfigError

#: Upper bound of the meta-loss normaliser: 1.5 ln 10.
MAX_META_LOSS = 1.5 * math.log(10.0)


def truncated_normal(key: PRNGKeyArray, shape: tuple[int, ...], fan_in: int) -> Float[Array, "..."]:
    """haiku's default weight init: ``N(0, 1)`` cut to ``[-2, 2]``, times ``1/sqrt(fan_in)``.

    As in ``hk.initializers.TruncatedNormal`` the cut is not re-scaled, so the
    samples' standard deviation is ``0.8796 / sqrt(fan_in)``.
    """
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32) / math.sqrt(fan_in)


def softmax_cross_entropy(logits: Float[Array, "b k"], labels: Int[Array, " b"]) -> Float[Array, ""]:
    """Mean over the batch of ``-log softmax(logits)[label]``."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=-1))


def normalize_loss(loss: Float[Array, ""], maximum: float = MAX_META_LOSS) -> Float[Array, ""]:
    """``clip(loss, 0, maximum)`` with NaN and +-inf mapped to ``maximum`` (default ``1.5 ln 10``)."""
    return jnp.where(jnp.isfinite(loss), jnp.clip(loss, 0.0, maximum), maximum)


def dataset_geometry(dataset: lofw.AbstractDataset, task: str) -> tuple[tuple[int, ...], int]:
    """``(image_shape, num_classes)`` of a dataset, with a clear error if unknown."""
    num_classes = getattr(dataset, "num_classes", None)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(
            f"task {task!r} needs an image-classification dataset with an integer "
            f"`num_classes` attribute; {type(dataset).__name__} has {num_classes!r}"
        )
    batch = jax.eval_shape(lambda k: dataset.sample(k, 1, "train"), jax.random.key(0))
    if not isinstance(batch, dict) or "image" not in batch or "label" not in batch:
        raise ConfigError(f"task {task!r} needs batches with keys 'image' and 'label'")
    return tuple(batch["image"].shape[1:]), num_classes


class AbstractChanceNormalisedTask(lofw.AbstractTask):
    """A task whose meta-loss normaliser is bounded by 1.5x its chance loss.

    Subclasses give ``chance_loss`` (``ln K`` over ``K`` classes or tokens);
    the normaliser is ``clip(loss, 0, 1.5 chance_loss)`` with NaN / +-inf
    mapped to the bound (:func:`normalize_loss`).
    """

    def normalizer(self, loss: Float[Array, ""]) -> Float[Array, ""]:
        """``clip(loss, 0, 1.5 chance_loss)``, non-finite -> ``1.5 chance_loss``."""
        return normalize_loss(loss, self.max_meta_loss)

    @property
    def max_meta_loss(self) -> float:
        """``1.5 chance_loss`` (``1.5 ln 10`` on ten classes)."""
        return 1.5 * self.chance_loss


class AbstractClassificationTask(AbstractChanceNormalisedTask):
    """A classifier ``logits(params, images)`` trained with softmax cross-entropy.

    Final subclasses hold ``dataset``, ``batch_size`` and ``num_classes`` and
    implement ``init`` and ``logits``.
    """

    dataset: AbstractVar[lofw.AbstractDataset]
    batch_size: AbstractVar[int]
    num_classes: AbstractVar[int]

    @abc.abstractmethod
    def logits(self, params: PyTree[Float[Array, "..."]], images: Float[Array, "b h w c"]) -> Float[Array, "b k"]:
        """Class scores for a batch of images."""

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> Batch:
        """``batch_size`` examples of ``split``, drawn on device."""
        return self.dataset.sample(key, self.batch_size, split)

    def loss(self, params: PyTree[Float[Array, "..."]], batch: Batch) -> Float[Array, ""]:
        """Mean softmax cross-entropy of ``logits(params, batch["image"])``."""
        return softmax_cross_entropy(self.logits(params, batch["image"]), batch["label"])

    def accuracy(self, params: PyTree[Float[Array, "..."]], batch: Batch) -> Float[Array, ""]:
        """Fraction of the batch whose top logit is the label."""
        return jnp.mean(jnp.argmax(self.logits(params, batch["image"]), -1) == batch["label"])

    @property
    def chance_loss(self) -> float:
        """``ln K``: the loss of a uniform guess over the ``K`` classes."""
        return math.log(self.num_classes)
