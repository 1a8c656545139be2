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
import optax
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

    def as_optax(self) -> optax.GradientTransformationExtraArgs:
        """This optimizer as an ``optax.GradientTransformationExtraArgs`` (:func:`as_optax`)."""
        return as_optax(self)


def as_optax(opt: AbstractOptimizer) -> optax.GradientTransformationExtraArgs:
    """Wrap ``opt`` for any optax training loop.

    ``update(grads, state, params, **extra)`` needs ``params`` (the features
    read them) and returns updates to *add* to the parameters, optax's sign
    convention. Extra arguments such as ``value=`` or ``loss=`` are accepted
    and ignored (the built-in features do not read the loss).
    """

    def init_fn(params):
        return opt.init(params)

    def update_fn(updates, state, params=None, **extra_args: Any):
        del extra_args
        if params is None:
            raise ValueError(
                "a lofw learned optimizer reads the parameters: call "
                "tx.update(grads, state, params)"
            )
        return opt.update(updates, state, params)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
