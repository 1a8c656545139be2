"""Built-in magnitude controllers."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

import lofw


class Exp(lofw.AbstractMagnitude):
    """``exp(beta * head)``: near 1 unless the head grows to O(1/beta)."""

    beta: float = eqx.field(static=True, default=1e-3)

    def __call__(self, head):
        return jnp.exp(self.beta * head)


class Constant(lofw.AbstractMagnitude):
    """A constant ``value``; reads no head."""

    uses_head: ClassVar[bool] = False
    value: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        if not self.value > 0:
            raise ValueError(f"a magnitude must be positive, got value={self.value}")

    def __call__(self, head):
        return jnp.asarray(self.value, jnp.float32)
