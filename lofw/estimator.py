"""The ``estimator`` component kind: meta-gradients over truncated unrolls."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx


class AbstractEstimator(eqx.Module):
    """Estimates the gradient of the meta-loss with respect to meta-parameters."""

    @abc.abstractmethod
    def init(self, *args: Any, **kwargs: Any) -> Any:
        """Initial estimator state."""

    @abc.abstractmethod
    def estimate(self, *args: Any, **kwargs: Any) -> Any:
        """One gradient estimate and the next estimator state."""
