"""``label_noise``: a classification family whose labels are corrupted at a per-episode rate.

Each episode draws a rate ``r ~ U(low, high)``; every label of every
training batch is then, with probability ``r``, replaced by a class drawn
uniformly from the ``K`` classes (it may draw the true one), so the
gradients point partly at noise and an optimizer must average them out.
Batches of other splits (evaluation) keep their labels. The loss, the
normaliser and the chance loss are the wrapped task's.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

import lofw
from lofw_plugins.task.wrapper import AbstractFamilyMember, AbstractTaskWrapper


def corrupt(key: PRNGKeyArray, labels: Array, rate: Float[Array, ""], classes: int) -> Array:
    """``labels`` with each entry replaced, with probability ``rate``, by a uniform class."""
    k_flip, k_class = jax.random.split(key)
    flip = jax.random.uniform(k_flip, labels.shape) < rate
    return jnp.where(flip, jax.random.randint(k_class, labels.shape, 0, classes, labels.dtype), labels)


class NoisyLabels(AbstractFamilyMember):
    """One member: ``task`` with training labels corrupted at ``rate``."""

    rate: Float[Array, ""]
    classes: int = eqx.field(static=True)

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> Any:
        k_batch, k_noise = jax.random.split(key)
        batch = self.task.sample_batch(k_batch, split)
        if split != "train":
            return batch
        return {**batch, "label": corrupt(k_noise, batch["label"], self.rate, self.classes)}


class LabelNoise(AbstractTaskWrapper):
    """The family (module docstring); its own batches are the wrapped task's.

    Args:
        task: a classification task (a registry name or an inline task) with
            ``num_classes`` and batches holding ``label``.
        rate: ``[low, high]`` of the uniform rate, ``0 <= low <= high <= 1``.
    """

    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)
    classes: int = eqx.field(static=True)

    def __init__(self, task: lofw.AbstractTask, rate: tuple[float, float] = (0.0, 0.3)):
        low, high = (float(x) for x in rate)
        if not 0 <= low <= high <= 1:
            raise ValueError(f"`rate` must hold 0 <= low <= high <= 1; got [{low}, {high}]")
        classes = getattr(task, "num_classes", None)
        if not isinstance(classes, int) or classes < 2:
            raise ValueError(f"label_noise needs a classification task with an integer `num_classes`; "
                             f"{type(task).__name__} has {classes!r}")
        self.task, self.low, self.high, self.classes = task, low, high, classes

    def sample_config(self, key: PRNGKeyArray) -> tuple[PyTree, Float[Array, ""]]:
        k_task, k_rate = jax.random.split(key)
        return self.task.sample_config(k_task), jax.random.uniform(k_rate, (), jnp.float32, self.low, self.high)

    def configured(self, config: tuple[PyTree, Float[Array, ""]] | None) -> lofw.AbstractTask:
        if config is None:
            return self.task
        inner, rate = config
        return NoisyLabels(self.task.configured(inner), jnp.asarray(rate, jnp.float32), self.classes)
