"""The ``network`` component kind: features to named heads."""


import abc

import equinox as eqx
from equinox import AbstractVar
from jaxtyping import Array, Float

from lofw.interfaces.features import LeafFeatures
from lofw.slots import BLACKBOX_MAGNITUDE, DIRECTION, NOMINAL_MAGNITUDE  # noqa: F401 - the head names, named here too


class AbstractNetwork(eqx.Module):
    """Maps the inputs of one tensor to named per-element heads.

    Contract:
        - The constructor takes keyword arguments ``n_inputs`` (the features'
          width), ``heads`` (a tuple of head names, decided by the learned
          optimizer) and ``key`` (a JAX PRNG key), besides its own options.
        - ``heads`` is kept as a field of the same name.
        - ``__call__(features)`` returns ``{name: array}`` for every head, each
          broadcastable to the parameter's shape.
    """

    heads: AbstractVar[tuple[str, ...]]

    @abc.abstractmethod
    def __call__(self, features: LeafFeatures) -> dict[str, Float[Array, "..."]]:
        """Per-element head outputs for one tensor."""
