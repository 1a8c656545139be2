"""What the PyTorch components of one tensor receive (the mirror of :class:`lofw.LeafStats`)."""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class LeafStats:
    """Accumulator statistics of one parameter tensor after this step's update, float32.

    As :class:`lofw.LeafStats`, except that ``momentum`` has the decays on
    its *leading* axis, ``(n_momenta, *param.shape)`` (each momentum is then
    a contiguous tensor), and ``step`` is a Python int.

    Attributes:
        grad: the gradient.
        param: the parameter before the update.
        momentum: gradient EMAs, decays ascending (``momentum[-1]`` the slowest). No bias correction.
        second_moment: EMA of ``grad**2``. No bias correction.
        step: number of updates done before this one.
        second_moment_decay: the decay of ``second_moment`` at this step (a
            0-d tensor), or None when the features do not state it.
    """

    grad: torch.Tensor
    param: torch.Tensor
    momentum: torch.Tensor
    second_moment: torch.Tensor
    step: int
    second_moment_decay: torch.Tensor | None = None


@dataclasses.dataclass(frozen=True)
class LeafFeatures:
    """The network inputs of one tensor in factored form (the mirror of :class:`lofw.LeafFeatures`).

    Element ``e``'s input is ``[channels[k][e] * scales[k] for k] + list(globals)``; a
    network may fold ``scales`` and ``globals`` into its first layer and never build
    the ``param.shape + (n_inputs,)`` tensor (:meth:`dense` builds it).

    Attributes:
        channels: per-element features, each broadcastable to the parameter's shape.
        scales: ``(len(channels),)``, the per-tensor normalisation of each channel.
        globals: ``(n_globals,)``, features shared by every element (not normalised).
    """

    channels: list[torch.Tensor]
    scales: torch.Tensor
    globals: torch.Tensor

    def dense(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The materialised ``shape + (n_inputs,)`` input tensor."""
        normalised = [torch.broadcast_to(c * s, shape) for c, s in zip(self.channels, self.scales)]
        return torch.cat([torch.stack(normalised, dim=-1), self.globals.expand(*shape, len(self.globals))], dim=-1)
