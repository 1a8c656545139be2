"""``init_scale``: a task family whose every episode starts from rescaled initial parameters.

Each episode draws one scale ``c`` log-uniform in ``range`` and starts from
``c * p_0`` (``p_0`` the wrapped task's initialisation); the loss is the
wrapped task's. Unlike ``reparam`` this changes the problem (where training
starts), as the learned-optimization library's initialisation-scale
families do.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

import lofw
from lofw_plugins.task.wrapper import AbstractFamilyMember, AbstractTaskWrapper, log_uniform


class ScaledInit(AbstractFamilyMember):
    """One member: ``task`` started from ``scale * p_0``."""

    scale: Float[Array, ""]

    def init(self, key: PRNGKeyArray) -> PyTree:
        return jax.tree_util.tree_map(lambda p: p * self.scale.astype(p.dtype), self.task.init(key))


class InitScale(AbstractTaskWrapper):
    """The family (module docstring); its own ``init`` is the wrapped task's.

    Args:
        task: the task (a registry name or an inline task).
        range: ``[low, high]`` of the log-uniform scale, ``0 < low <= high``.
    """

    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)

    def __init__(self, task: lofw.AbstractTask, range: tuple[float, float] = (0.3, 3.0)):
        low, high = (float(x) for x in range)
        if not 0 < low <= high:
            raise ValueError(f"`range` must hold 0 < low <= high; got [{low}, {high}]")
        self.task, self.low, self.high = task, low, high

    def sample_config(self, key: PRNGKeyArray) -> tuple[PyTree, Float[Array, ""]]:
        k_task, k_scale = jax.random.split(key)
        return self.task.sample_config(k_task), log_uniform(k_scale, (), self.low, self.high)

    def configured(self, config: tuple[PyTree, Float[Array, ""]] | None) -> lofw.AbstractTask:
        if config is None:
            return self.task
        inner, scale = config
        return ScaledInit(self.task.configured(inner), jnp.asarray(scale, jnp.float32))
