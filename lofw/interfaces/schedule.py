"""The ``schedule`` component kind: how long each meta-training episode lasts.

An estimator asks its schedule for an episode length every time a particle
starts an episode (at initialisation and at each reset), so particles of one
meta-step may run episodes of different lengths. The run's ``horizon`` is
the longest episode; evaluation and stability reports measure against it.
"""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, Int, PRNGKeyArray


class AbstractHorizonSchedule(eqx.Module):
    """Episode lengths of meta-training.

    Contract:
        - ``check(horizon, truncation)`` raises ``ValueError`` (with a
          message for people) when the schedule cannot run with this horizon
          and truncation; it is called when the estimator is built.
        - ``sample(key, horizon, truncation)`` is one episode's length, an
          int32 scalar in ``[truncation, horizon]`` (jit- and vmap-able), or
          None for "always ``horizon``" (then the inner state holds no
          length, and checkpoints are those of a constant horizon).
          When ``horizon`` is a multiple of ``truncation`` every length must
          be one too (the estimators' fast path resets only between
          truncations).
    """

    def check(self, horizon: int, truncation: int) -> None:
        """Accept every horizon by default."""
        del horizon, truncation

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, horizon: int, truncation: int) -> Int[Array, ""] | None:
        """One episode's length (None: ``horizon``)."""
