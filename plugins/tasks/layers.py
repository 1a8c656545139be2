"""Stateless building blocks shared by the task models (no batch statistics).

LayerNorm over the last axis (eps 1e-5, learned scale and offset, as haiku's
``LayerNorm(axis=-1, create_scale=True, create_offset=True)``)::

    LN(x) = (x - mean(x)) / sqrt(var(x) + 1e-5) * scale + offset

Convolutions and pooling are NHWC with HWIO kernels and SAME padding as in
XLA / TensorFlow: output size ``ceil(size / stride)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from lofw_plugins.tasks.classification import truncated_normal

LAYER_NORM_EPS = 1e-5


def layer_norm(x: Float[Array, "... d"], scale: Float[Array, " d"], offset: Float[Array, " d"]) -> Float[Array, "... d"]:
    """``(x - mean) / sqrt(var + 1e-5) * scale + offset`` over the last axis."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPS) * scale + offset


def layer_norm_params(size: int) -> dict[str, Float[Array, " d"]]:
    """Unit scale, zero offset."""
    return {"scale": jnp.ones((size,), jnp.float32), "offset": jnp.zeros((size,), jnp.float32)}


def linear_params(key: PRNGKeyArray, fan_in: int, fan_out: int) -> dict[str, Float[Array, "..."]]:
    """Truncated-normal ``1/sqrt(fan_in)`` weight ``[fan_in, fan_out]`` and zero bias."""
    return {"w": truncated_normal(key, (fan_in, fan_out), fan_in), "b": jnp.zeros((fan_out,), jnp.float32)}


def linear(p: dict[str, Float[Array, "..."]], x: Float[Array, "... i"]) -> Float[Array, "... o"]:
    """``x W + b``."""
    return x @ p["w"] + p["b"]


def conv_kernel(key: PRNGKeyArray, size: int, c_in: int, c_out: int) -> Float[Array, "k k i o"]:
    """HWIO kernel, truncated-normal with ``fan_in = size * size * c_in``."""
    return truncated_normal(key, (size, size, c_in, c_out), size * size * c_in)


def conv2d(x: Float[Array, "b h w c"], w: Float[Array, "k k c o"], stride: int) -> Float[Array, "b h2 w2 o"]:
    """Convolution, NHWC input, HWIO kernel, SAME padding."""
    return jax.lax.conv_general_dilated(
        x, w, window_strides=(stride, stride), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def max_pool(x: Float[Array, "b h w c"], size: int = 3, stride: int = 2) -> Float[Array, "b h2 w2 c"]:
    """Max over ``size x size`` windows with SAME padding (padding never wins)."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, size, size, 1), (1, stride, stride, 1), "SAME")
