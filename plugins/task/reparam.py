"""``reparam``: a task family whose every episode trains in rescaled parameters.

Each episode draws positive scales ``s`` and trains ``q = p / s`` in place
of the wrapped task's parameters ``p``: the loss is ``L(s * q)`` and the
initial ``q`` is ``p_0 / s``. The model and its training trajectory under
gradient descent on ``p`` are unchanged by construction, but the optimizer
sees gradients ``s * dL/dp`` and parameters ``p / s``, so an optimizer whose
step size is tied to one scale of gradients or weights fails on it. This is
the reference's ``ReparamWeights`` augmentation (as Celo meta-trains with).

The level of the rescaling is drawn per episode, uniformly from ``levels``
(repeat a level to weight it, as Celo's ``[none, none, global, global,
tensor, tensor, parameter]``):

- ``none``: ``s = 1``;
- ``global``: one scale for every parameter;
- ``tensor``: one scale per parameter tensor;
- ``parameter``: one scale per element;

each scale log-uniform in ``range`` (default the reference's ``[1e-3, 1e3]``).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

import lofw
from lofw_plugins.task.wrapper import AbstractFamilyMember, AbstractTaskWrapper, log_uniform

LEVELS = ("none", "global", "tensor", "parameter")


class Reparameterised(AbstractFamilyMember):
    """One member of the family: ``task`` trained in ``q = p / scales``."""

    scales: PyTree

    def init(self, key: PRNGKeyArray) -> PyTree:
        return jax.tree_util.tree_map(lambda p, s: p / s.astype(p.dtype), self.task.init(key), self.scales)

    def loss(self, params: PyTree, batch: Any) -> Float[Array, ""]:
        return self.task.loss(self.original(params), batch)

    def original(self, params: PyTree) -> PyTree:
        """The wrapped task's parameters ``p = scales * q``."""
        return jax.tree_util.tree_map(lambda q, s: q * s.astype(q.dtype), params, self.scales)


class Reparam(AbstractTaskWrapper):
    """The family (module docstring). Its own ``init`` and ``loss`` are the
    wrapped task's (``s = 1``).

    Args:
        task: the task to reparameterise (a registry name or an inline task).
        levels: the levels to draw from, uniformly (default all four).
        range: ``[low, high]`` of the log-uniform scales, ``0 < low <= high``.
    """

    levels: tuple[str, ...] = eqx.field(static=True)
    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)

    def __init__(self, task: lofw.AbstractTask, levels: tuple[str, ...] = LEVELS,
                 range: tuple[float, float] = (1e-3, 1e3)):
        levels = tuple(levels)
        if not levels:
            raise ValueError(f"`levels` is empty; choose from {', '.join(LEVELS)}")
        unknown = [x for x in levels if x not in LEVELS]
        if unknown:
            raise ValueError(f"unknown level(s) {', '.join(map(repr, unknown))}; valid choices: {', '.join(LEVELS)}")
        low, high = (float(x) for x in range)
        if not 0 < low <= high:
            raise ValueError(f"`range` must hold 0 < low <= high; got [{low}, {high}]")
        self.task, self.levels, self.low, self.high = task, levels, low, high

    def sample_config(self, key: PRNGKeyArray) -> tuple[PyTree, PyTree]:
        k_task, k_level, k_global, k_tensor, k_element = jax.random.split(key, 5)
        inner = self.task.sample_config(k_task)
        shapes = jax.eval_shape(self.task.configured(inner).init, k_task)
        leaves, treedef = jax.tree_util.tree_flatten(shapes)
        level = jnp.asarray([LEVELS.index(x) for x in self.levels])[
            jax.random.randint(k_level, (), 0, len(self.levels))]
        whole = log_uniform(k_global, (), self.low, self.high)
        per_tensor = log_uniform(k_tensor, (len(leaves),), self.low, self.high)
        element_keys = jax.random.split(k_element, max(len(leaves), 1))
        scales = [
            jnp.select([level == 1, level == 2, level == 3],
                       [whole, per_tensor[i], log_uniform(element_keys[i], x.shape, self.low, self.high)],
                       jnp.float32(1.0)) * jnp.ones(x.shape, jnp.float32)
            for i, x in enumerate(leaves)
        ]
        return inner, jax.tree_util.tree_unflatten(treedef, scales)

    def configured(self, config: tuple[PyTree, PyTree] | None) -> lofw.AbstractTask:
        if config is None:  # the nominal member
            return self.task
        inner, scales = config
        return Reparameterised(self.task.configured(inner), scales)
