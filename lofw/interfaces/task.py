"""The ``task`` component kind: an inner problem a learned optimizer trains.

A task may also be a *task family*: a distribution over tasks of one fixed
shape. Each episode of meta-training (and each evaluation run) draws its own
configuration with ``sample_config(key)`` (a pytree of arrays: a data seed,
an initialisation scale, a reparameterisation of the parameters) and trains
``configured(config)``, an ordinary task. Because the shapes never change,
particles of one family stay one ``vmap`` and one compiled program. A plain
task is the family of one task: ``sample_config`` returns None and
``configured`` returns the task itself, which is the default here. This is
the reference's ``TaskFamily`` interface (``sample(key) -> cfg``,
``task_fn(cfg) -> task``), with the family being a task itself so that it
goes wherever a task goes (registry, grids, evaluation).
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

#: ``fold_in`` data of an episode's configuration key, drawn from the key that
#: initialises its parameters. A separate stream, so that the parameters of a
#: plain task (whose ``sample_config`` draws nothing) are what they always were.
CONFIG_STREAM = 0x5EED

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

    def sample_config(self, key: PRNGKeyArray) -> PyTree | None:
        """The configuration of one episode of a task family (arrays of fixed
        shapes); None for a plain task (the default)."""
        del key
        return None

    def configured(self, config: PyTree | None) -> "AbstractTask":
        """The task of configuration ``config`` (from :meth:`sample_config`);
        a plain task returns itself. A family's own ``init``, ``loss`` and
        ``sample_batch`` are those of its nominal member."""
        del config
        return self

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


def draw_config(task: AbstractTask, key: PRNGKeyArray) -> PyTree | None:
    """The configuration of the episode whose parameters ``key`` initialises
    (:data:`CONFIG_STREAM`); None for a plain task."""
    return task.sample_config(jax.random.fold_in(key, CONFIG_STREAM))
