"""A learned optimizer as an optax gradient transformation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optax

if TYPE_CHECKING:
    from lofw.base_optimizer import AbstractOptimizer


def as_optax(opt: "AbstractOptimizer") -> optax.GradientTransformationExtraArgs:
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
