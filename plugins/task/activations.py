"""Activation functions a task may name in its config."""

from __future__ import annotations

from typing import Callable, Literal

import jax

Activation = Literal["relu", "tanh", "gelu", "sigmoid", "elu", "silu"]

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jax.numpy.tanh,
    "gelu": jax.nn.gelu,
    "sigmoid": jax.nn.sigmoid,
    "elu": jax.nn.elu,
    "silu": jax.nn.silu,
}
