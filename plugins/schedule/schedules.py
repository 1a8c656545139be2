"""``constant`` and ``log_uniform`` episode lengths.

``constant``: every episode lasts the run's ``horizon`` (the paper's
protocol, and lofw's default).

``log_uniform``: each episode's length is drawn when it starts, ``L =
exp(U(ln min, ln max))``, as the learned-optimizer literature samples
meta-training horizons (Celo: LogUniform(100, 2000); muLO: (100, 1000)), so
that the optimizer sees every stage of training and cannot time its
behaviour to one episode length. When the horizon is a multiple of the
truncation, ``L`` is rounded to the nearest multiple of the truncation
(within ``[min, max]`` rounded the same way), which keeps every reset at the
end of a truncation (the estimators' fast path, ``truncated.py``);
otherwise to the nearest integer. ``max`` defaults to the run's horizon.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

import lofw


class Constant(lofw.AbstractHorizonSchedule):
    """Every episode lasts ``horizon`` steps."""

    def sample(self, key: PRNGKeyArray, horizon: int, truncation: int) -> None:
        del key, horizon, truncation


def _grid(horizon: int, truncation: int) -> int:
    """The step lengths are multiples of: the truncation on the fast path, else 1."""
    return truncation if horizon % truncation == 0 else 1


class LogUniform(lofw.AbstractHorizonSchedule):
    """Episode lengths ``exp(U(ln min, ln max))`` (module docstring).

    Args:
        min: the shortest episode, at least the truncation.
        max: the longest, at most the run's horizon (default: the horizon).
    """

    min: int
    max: int | None = None

    def __init__(self, min: int, max: int | None = None):
        if min < 1 or (max is not None and max < 1):
            raise ValueError(f"episode lengths must be positive; got min={min}, max={max}")
        if max is not None and min > max:
            raise ValueError(f"min ({min}) exceeds max ({max})")
        self.min, self.max = int(min), None if max is None else int(max)

    def longest(self, horizon: int) -> int:
        """The longest episode before rounding: ``max``, or the run's horizon."""
        return horizon if self.max is None else self.max

    def bounds(self, horizon: int, truncation: int) -> tuple[int, int]:
        """The smallest and largest length, in multiples of the step grid."""
        grid = _grid(horizon, truncation)
        top = self.longest(horizon)
        return math.ceil(self.min / grid) * grid, (top // grid) * grid

    def check(self, horizon: int, truncation: int) -> None:
        top = self.longest(horizon)
        if self.min < truncation:
            raise ValueError(f"min ({self.min}) is shorter than the truncation ({truncation}); "
                             f"an episode must last at least one truncation")
        if top > horizon:
            raise ValueError(f"max ({top}) exceeds the run's horizon ({horizon}); "
                             f"set the horizon to the longest episode")
        if self.min > top:
            raise ValueError(f"min ({self.min}) exceeds max ({top})")
        low, high = self.bounds(horizon, truncation)
        if low > high:
            raise ValueError(f"no multiple of the truncation ({truncation}) lies in [{self.min}, {top}]")

    def sample(self, key: PRNGKeyArray, horizon: int, truncation: int) -> Int[Array, ""]:
        low, high = self.bounds(horizon, truncation)
        grid = _grid(horizon, truncation)
        length = jnp.exp(jax.random.uniform(key, (), jnp.float32, math.log(self.min), math.log(self.longest(horizon))))
        return (jnp.clip(jnp.round(length / grid), low // grid, high // grid) * grid).astype(jnp.int32)
