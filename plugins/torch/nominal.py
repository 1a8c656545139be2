"""The built-in nominal terms in PyTorch (plugins/nominal/momentum.py)."""

from __future__ import annotations

import torch

from lofw.torch import LeafStats

EPS = 1e-6


def mean_of_momenta(momentum: torch.Tensor) -> torch.Tensor:
    """The mean over the leading (decay) axis, summed in the JAX term's order."""
    total = momentum[0]
    for m in momentum[1:]:
        total = total + m
    return total / momentum.shape[0]


class SGD:
    def direction(self, stats: LeafStats):
        return stats.grad


class AggMo:
    def direction(self, stats: LeafStats):
        return mean_of_momenta(stats.momentum)


class Adam:
    def direction(self, stats: LeafStats):
        return stats.momentum[-1] * torch.rsqrt(stats.second_moment + EPS)


class AdamAggMo:
    def direction(self, stats: LeafStats):
        return mean_of_momenta(stats.momentum) * torch.rsqrt(stats.second_moment + EPS)
