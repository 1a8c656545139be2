"""Stateless building blocks shared by the task models (no batch statistics).

LayerNorm over the last axis (eps 1e-5, learned scale and offset, as haiku's
``LayerNorm(axis=-1, create_scale=True, create_offset=True)``)::

    LN(x) = (x - mean(x)) / sqrt(var(x) + 1e-5) * scale + offset

Convolutions and pooling are NHWC with HWIO kernels and SAME padding as in
XLA / TensorFlow: output size ``ceil(size / stride)``.

Initialisation: an ``init`` builds its parameter tree with :class:`Draw`
placeholders and :func:`materialize` fills them all from one draw of
``N(0, 1)`` cut to ``[-2, 2]`` (haiku's ``TruncatedNormal``, not re-scaled),
each times ``1 / sqrt(fan_in)``. One draw sliced into tensors has the same
distribution as one draw per tensor, and XLA compiles a single random-bit
generator instead of one per tensor (on CPU that took an ``init`` with a
dozen tensors from tens of seconds to a few).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

LAYER_NORM_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class Draw:
    """Placeholder for a truncated-normal tensor of ``shape`` scaled by ``1 / sqrt(fan_in)``."""

    shape: tuple[int, ...]
    fan_in: int = 1


def materialize(key: PRNGKeyArray, tree: PyTree) -> PyTree[Float[Array, "..."]]:
    """Replace every :class:`Draw` leaf of ``tree`` by its tensor, all from one draw of ``key``."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=lambda x: isinstance(x, Draw))
    draws = [leaf for leaf in leaves if isinstance(leaf, Draw)]
    sizes = [math.prod(d.shape) for d in draws]
    flat = jax.random.truncated_normal(key, -2.0, 2.0, (sum(sizes),), jnp.float32)
    ends = np.cumsum(sizes)
    values = iter(flat[e - n:e].reshape(d.shape) / math.sqrt(d.fan_in) for d, n, e in zip(draws, sizes, ends))
    return jax.tree.unflatten(treedef, [next(values) if isinstance(x, Draw) else x for x in leaves])


def layer_norm(x: Float[Array, "... d"], scale: Float[Array, " d"], offset: Float[Array, " d"]) -> Float[Array, "... d"]:
    """``(x - mean) / sqrt(var + 1e-5) * scale + offset`` over the last axis."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPS) * scale + offset


def layer_norm_params(size: int) -> dict[str, Float[Array, " d"]]:
    """Unit scale, zero offset."""
    return {"scale": jnp.ones((size,), jnp.float32), "offset": jnp.zeros((size,), jnp.float32)}


def linear_params(fan_in: int, fan_out: int) -> dict[str, Draw | Float[Array, " o"]]:
    """Truncated-normal ``1/sqrt(fan_in)`` weight ``[fan_in, fan_out]`` (a :class:`Draw`) and zero bias."""
    return {"w": Draw((fan_in, fan_out), fan_in), "b": jnp.zeros((fan_out,), jnp.float32)}


def linear(p: dict[str, Float[Array, "..."]], x: Float[Array, "... i"]) -> Float[Array, "... o"]:
    """``x W + b``."""
    return x @ p["w"] + p["b"]


def conv_kernel(size: int, c_in: int, c_out: int) -> Draw:
    """HWIO kernel, truncated-normal with ``fan_in = size * size * c_in`` (a :class:`Draw`)."""
    return Draw((size, size, c_in, c_out), size * size * c_in)


def conv2d(x: Float[Array, "b h w c"], w: Float[Array, "k k c o"], stride: int) -> Float[Array, "b h2 w2 o"]:
    """Convolution, NHWC input, HWIO kernel, SAME padding."""
    return jax.lax.conv_general_dilated(
        x, w, window_strides=(stride, stride), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def max_pool(x: Float[Array, "b h w c"], size: int = 3, stride: int = 2) -> Float[Array, "b h2 w2 c"]:
    """Max over ``size x size`` windows with SAME padding (padding never wins)."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, size, size, 1), (1, stride, stride, 1), "SAME")
