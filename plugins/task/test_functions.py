"""``parabola`` and ``rosenbrock``: the two problems optax's own test suite asks every optimizer to solve.

optax (``optax/_src/alias_test.py``, ``test_optimization``) runs each
optimizer for 10000 steps on these deterministic problems and requires the
parameters to end within ``rtol = atol = 3e-2`` of the minimiser:

- parabola: ``L(x) = sum_i (x_i - t_i)^2`` from ``x_0 = [-1, 10, 1]`` to
  ``t = [1, -1, 1]`` (one coordinate starts 11 away from its target, so an
  optimizer whose step size is tied to one task's scale fails it);
- Rosenbrock: ``L(x) = (1 - x_0)^2 + 100 (x_1 - x_0^2)^2`` from ``[0, 0]`` to
  ``[1, 1]`` (a curved, badly conditioned valley).

Both ignore the init key and have no data (a batch is empty), so every seed
is the same run. Meta-loss normaliser: ``clip(L / L(x_0), 0, 1.5)``,
non-finite -> 1.5 (``L(x_0)`` is 125 and 1). :func:`solved` is optax's
criterion.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

import lofw

#: The normaliser's bound, in units of the initial loss.
MAX_META_LOSS = 1.5
#: optax's tolerance: ``|x - x*| <= atol + rtol |x*|``.
TOLERANCE = 3e-2


class AbstractTestFunction(lofw.AbstractTask):
    """A deterministic problem from a fixed start; subclasses give ``start``, ``minimiser`` and ``value``."""

    start: tuple[float, ...] = eqx.field(static=True)
    minimiser: tuple[float, ...] = eqx.field(static=True)

    @abc.abstractmethod
    def value(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        """The loss at ``x``."""

    def init(self, key: PRNGKeyArray) -> Float[Array, " n"]:
        del key
        return jnp.asarray(self.start, jnp.float32)

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> dict:
        del key, split
        return {}

    def loss(self, params: Float[Array, " n"], batch: dict) -> Float[Array, ""]:
        del batch
        return self.value(params)

    def normalizer(self, loss: Float[Array, ""]) -> Float[Array, ""]:
        scaled = loss / self.value(jnp.asarray(self.start, jnp.float32))
        return jnp.where(jnp.isfinite(scaled), jnp.clip(scaled, 0.0, MAX_META_LOSS), MAX_META_LOSS)

    @property
    def max_meta_loss(self) -> float:
        return MAX_META_LOSS


class Parabola(AbstractTestFunction):
    """``sum_i (x_i - t_i)^2`` from ``[-1, 10, 1]`` to ``[1, -1, 1]`` (optax's)."""

    def __init__(self):
        self.start, self.minimiser = (-1.0, 10.0, 1.0), (1.0, -1.0, 1.0)

    def value(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        return jnp.sum((x - jnp.asarray(self.minimiser, x.dtype)) ** 2)


class Rosenbrock(AbstractTestFunction):
    """``(1 - x_0)^2 + 100 (x_1 - x_0^2)^2`` from ``[0, 0]`` to ``[1, 1]`` (optax's)."""

    def __init__(self):
        self.start, self.minimiser = (0.0, 0.0), (1.0, 1.0)

    def value(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def solved(task: AbstractTestFunction, params: Float[Array, " n"]) -> bool:
    """optax's criterion: every coordinate within ``3e-2 + 3e-2 |x*|`` of the minimiser."""
    target = np.asarray(task.minimiser)
    return bool(np.all(np.abs(np.asarray(params) - target) <= TOLERANCE + TOLERANCE * np.abs(target)))
