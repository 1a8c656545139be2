"""The ``task`` component kind: an inner problem a learned optimizer trains."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from lofw.interfaces.dataset import Batch


class AbstractTask(eqx.Module):
    """An inner training problem.

    Contract:
        - ``init(key)`` returns a fresh parameter pytree of float arrays.
        - ``sample_batch(key, split)`` draws one minibatch on device.
        - ``loss(params, batch)`` is the scalar training loss.
        - ``normalizer(loss)`` maps a raw loss to a bounded meta-loss (default:
          identity); ``max_meta_loss`` is its upper bound, used to mark a run
          as diverged.
    """

    @abc.abstractmethod
    def init(self, key: PRNGKeyArray) -> PyTree[Float[Array, "..."]]:
        """Fresh parameters."""

    @abc.abstractmethod
    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> Batch:
        """One minibatch."""

    @abc.abstractmethod
    def loss(self, params: PyTree[Float[Array, "..."]], batch: Any) -> Float[Array, ""]:
        """Scalar training loss."""

    def normalizer(self, loss: Float[Array, ""]) -> Float[Array, ""]:
        """Map a raw loss to the meta-loss. Identity unless overridden."""
        return loss

    @property
    def chance_loss(self) -> float | None:
        """The loss of a uniform guess (``ln(classes)`` for a classifier,
        ``ln(vocab)`` for a byte language model), or None when the task has
        no such reference. Stability reports count the steps above it."""
        return None

    @property
    def max_meta_loss(self) -> float:
        """Largest value ``normalizer`` returns (``inf`` when unbounded)."""
        return float("inf")
