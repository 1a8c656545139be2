"""``gradient_noise``: the wrapped task with Gaussian noise added to every gradient.

The loss is ``L(p) + sum_j (p_j - stop_gradient(p_j)) n_j`` with ``n ~ N(0,
std^2 I)`` drawn with each batch: its value is exactly ``L(p)`` (so the
meta-loss and evaluation curves are the wrapped task's) and its gradient is
``dL/dp + n``. A noisier task than its minibatches alone make it, for
meta-training an optimizer that must not trust single gradients.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

import lofw
from lofw_plugins.task.wrapper import AbstractTaskWrapper


class GradientNoise(AbstractTaskWrapper):
    """Args: ``task`` (a registry name or an inline task), ``std`` (> 0) of the noise."""

    std: float = eqx.field(static=True)

    def __init__(self, task: lofw.AbstractTask, std: float = 0.01):
        if not std > 0:
            raise ValueError(f"`std` must be positive; got {std}")
        self.task, self.std = task, float(std)

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> dict[str, Any]:
        k_batch, k_noise = jax.random.split(key)
        return {"batch": self.task.sample_batch(k_batch, split), "noise": k_noise}

    def noise(self, params: PyTree, key: PRNGKeyArray) -> PyTree:
        """The noise added to the gradient at ``params`` for a batch with noise key ``key``."""
        leaves, treedef = jax.tree_util.tree_flatten(params)
        keys = jax.random.split(key, max(len(leaves), 1))
        return jax.tree_util.tree_unflatten(
            treedef, [self.std * jax.random.normal(k, x.shape, jnp.float32).astype(x.dtype) for k, x in zip(keys, leaves)])

    def loss(self, params: PyTree, batch: dict[str, Any]) -> Float[Array, ""]:
        noise = self.noise(params, batch["noise"])
        zero = sum(jnp.vdot(p - jax.lax.stop_gradient(p), n) for p, n in
                   zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(noise)))
        return self.task.loss(params, batch["batch"]) + zero
