"""A task built around another task: everything is the wrapped task's unless overridden.

Task wrappers (``reparam``, ``init_scale``, ``gradient_noise``) take the task
they change as their ``task`` argument, which a config gives as a registry
name or an inline task mapping (``lofw.tasks.build_task`` builds it first),
so wrappers compose: ``{name: gradient_noise, task: {name: reparam, task:
digits_mlp}}``. A wrapper passes its wrapped task's family through: its
configuration holds the wrapped task's, so a reparameterised family is
still a family over the wrapped one's configurations.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

import lofw


class AbstractTaskWrapper(lofw.AbstractTask):
    """Delegates ``init``, ``sample_batch``, ``loss``, the normaliser, the chance
    loss and the family methods to ``task``."""

    task: lofw.AbstractTask

    def init(self, key: PRNGKeyArray) -> PyTree:
        return self.task.init(key)

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> Any:
        return self.task.sample_batch(key, split)

    def loss(self, params: PyTree, batch: Any) -> Float[Array, ""]:
        return self.task.loss(params, batch)

    def normalizer(self, loss: Float[Array, ""]) -> Float[Array, ""]:
        return self.task.normalizer(loss)

    @property
    def chance_loss(self) -> float | None:
        return self.task.chance_loss

    @property
    def max_meta_loss(self) -> float:
        return self.task.max_meta_loss

    def sample_config(self, key: PRNGKeyArray) -> PyTree | None:
        return self.task.sample_config(key)

    def configured(self, config: PyTree | None) -> lofw.AbstractTask:
        """This wrapper around the wrapped task's member ``config``."""
        return eqx.tree_at(lambda w: w.task, self, self.task.configured(config))


class AbstractFamilyMember(AbstractTaskWrapper):
    """One member of a wrapper family: a plain task again (no configuration of
    its own; the wrapped member was configured when it was built)."""

    def sample_config(self, key: PRNGKeyArray) -> None:
        del key

    def configured(self, config: None) -> lofw.AbstractTask:
        del config
        return self


class AbstractDefaultMemberFamily(lofw.AbstractTask):
    """A family whose own task methods are those of its default member,
    ``configured(None)`` (a family used as a plain task trains that member)."""

    def init(self, key: PRNGKeyArray) -> PyTree:
        return self.configured(None).init(key)

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> Any:
        return self.configured(None).sample_batch(key, split)

    def loss(self, params: PyTree, batch: Any) -> Float[Array, ""]:
        return self.configured(None).loss(params, batch)

    def normalizer(self, loss: Float[Array, ""]) -> Float[Array, ""]:
        return self.configured(None).normalizer(loss)


def log_uniform(key: PRNGKeyArray, shape: tuple[int, ...], low: float, high: float) -> Float[Array, ...]:
    """``exp(U(ln low, ln high))`` of ``shape``."""
    return jnp.exp(jax.random.uniform(key, shape, jnp.float32, math.log(low), math.log(high)))
