"""``AbstractOptimizer``: anything with pure ``init`` / ``update`` that
meta-training can differentiate through or perturb.

:class:`lofw.LearnedOptimizer` is the composed one; a whole optimizer with its
own structure (for example the NQM's dense preconditioner) subclasses this
directly and registers as kind ``optimizer``. Meta-parameters are the
module's inexact-array leaves.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
from jaxtyping import Array, Float, PyTree

Params = PyTree[Float[Array, "..."]]


class AbstractOptimizer(eqx.Module):
    """Pure ``init(params) -> state`` and ``update(grads, state, params) -> (updates, state)``.

    ``updates`` follow optax's convention: add them to the parameters.
    """

    @abc.abstractmethod
    def init(self, params: Params) -> Any:
        """Initial state for ``params``."""

    @abc.abstractmethod
    def update(self, grads: Params, state: Any, params: Params) -> tuple[Params, Any]:
        """One step."""

    def as_optax(self):
        """This optimizer as an ``optax.GradientTransformationExtraArgs``."""
        from lofw.optax_adapter import as_optax

        return as_optax(self)
