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
