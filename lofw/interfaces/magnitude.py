"""The ``magnitude`` component kind: a positive scale from a network head."""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
from jaxtyping import Array, Float


class AbstractMagnitude(eqx.Module):
    """Turns a network head into a positive, element-wise scale.

    Attributes:
        uses_head: whether the network must produce a head for this
            magnitude. A magnitude that ignores its head (``constant``) sets it
            to False and is called with ``head=None``.
    """

    uses_head: ClassVar[bool] = True

    @abc.abstractmethod
    def __call__(self, head: Float[Array, "..."] | None) -> Float[Array, "..."]:
        """A positive scale, broadcastable to the head's shape."""
