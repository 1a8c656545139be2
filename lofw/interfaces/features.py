"""The ``features`` component kind: accumulator state and network inputs."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from lofw.interfaces.stats import LeafStats


class LeafFeatures(eqx.Module):
    """The network inputs of one parameter tensor, in factored form.

    The input of element ``e`` to the network is the vector
    ``[channels[k][e] * scales[k] for k] + list(globals)``. Keeping the three
    pieces apart lets a network fold ``scales`` and ``globals`` into its first
    layer and never build the ``param.shape + (n_inputs,)`` tensor; row and
    column statistics stay as broadcastable vectors until that layer.

    Attributes:
        channels: per-element features, each broadcastable to ``param.shape``
            (a factored row statistic may have a size-1 axis).
        scales: shape ``(len(channels),)``: the per-tensor normalisation of
            each channel (for example ``1 / rms``).
        globals: shape ``(n_globals,)``: features shared by every element of
            the tensor (for example the step embedding), not normalised.
    """

    channels: tuple[Float[Array, "..."], ...]
    scales: Float[Array, " n_channels"]
    globals: Float[Array, " n_globals"]

    @property
    def n_inputs(self) -> int:
        return len(self.channels) + self.globals.shape[0]

    def dense(self, shape: tuple[int, ...]) -> Float[Array, "... n_inputs"]:
        """The materialised ``shape + (n_inputs,)`` input tensor.

        For networks that do not care about speed, and for tests.
        """
        normalised = [jnp.broadcast_to(c * s, shape) for c, s in zip(self.channels, self.scales)]
        shared = [jnp.broadcast_to(g, shape) for g in self.globals]
        return jnp.stack(normalised + shared, axis=-1)


class AbstractFeatures(eqx.Module):
    """Owns the per-tensor accumulator state and computes the network inputs.

    A features component works on one parameter tensor at a time; the learned
    optimizer maps it over the leaves of the parameter pytree. Its array
    fields (for example learned decay offsets) are meta-parameters.

    Contract:
        - ``n_inputs``: the width of :class:`LeafFeatures` it produces.
        - ``init_leaf(param)`` returns the accumulator state of one tensor,
          a pytree of arrays whose structure never changes across steps.
        - ``update_leaf(grad, param, state, step)`` returns
          ``(new_state, LeafStats, LeafFeatures)``; ``step`` is the number of
          updates done before this one.
    """

    @property
    @abc.abstractmethod
    def n_inputs(self) -> int:
        """Number of network inputs per element."""

    @abc.abstractmethod
    def init_leaf(self, param: Float[Array, "..."]) -> Any:
        """Zero accumulator state for one parameter tensor."""

    @abc.abstractmethod
    def update_leaf(
        self,
        grad: Float[Array, "..."],
        param: Float[Array, "..."],
        state: Any,
        step: Int[Array, ""],
    ) -> tuple[Any, LeafStats, LeafFeatures]:
        """Advance the accumulators by one gradient and compute the inputs."""
