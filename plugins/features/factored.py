"""Adafactor-style factored second moments (star_spec.md 1.4).

A tensor of rank >= 2 keeps, per decay, a row statistic (the mean of
``g**2`` over its largest axis ``d0``) and a column statistic (the mean over
its second largest axis ``d1``); smaller tensors keep a full ("diagonal")
EMA. Everything is computed on the factored vectors; they are broadcast back
to the tensor's shape only where they meet a full-size array.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

EPS_GSQ = 1e-30
EPS_FACTOR = 1e-9


def factored_dims(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(d1, d0)``: the second largest and the largest axis, or None below rank 2.

    Ties follow a stable argsort, so a square matrix gives ``(0, 1)``.
    """
    if len(shape) < 2:
        return None
    order = np.argsort(np.asarray(shape), kind="stable")
    return int(order[-2]), int(order[-1])


def row_axis_of_d1(d1: int, d0: int) -> int:
    """Index of axis ``d1`` in the row statistic, which lacks axis ``d0``."""
    return d1 - 1 if d1 > d0 else d1


def update_factored(row, col, gsq, beta, d1: int, d0: int):
    """EMA update of the row/col statistics (trailing decay axis)."""
    row = beta * row + (1.0 - beta) * jnp.mean(gsq, axis=d0)[..., None]
    col = beta * col + (1.0 - beta) * jnp.mean(gsq, axis=d1)[..., None]
    return row, col


def factors(row, col, d1: int, d0: int):
    """Adafactor's row and column factors, each still in factored shape."""
    row_mean = jnp.mean(row, axis=row_axis_of_d1(d1, d0), keepdims=True)
    row_factor = lax.rsqrt(jnp.maximum(row / (row_mean + EPS_FACTOR), EPS_FACTOR))
    col_factor = lax.rsqrt(jnp.maximum(col, EPS_FACTOR))
    return row_factor, col_factor
