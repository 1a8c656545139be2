"""The built-in preconditioners in PyTorch (plugins/preconditioner/rms.py and stable.py have the maths)."""

from __future__ import annotations

import torch

from lofw.torch import LeafStats
from lofw_plugins.torch.nominal import mean_of_momenta

EPS = 1e-6


def _rms_direction(x, stats: LeafStats, center: bool, eps: float):
    x = torch.broadcast_to(x, stats.param.shape)
    if center:
        x = x - x.mean()
    return x * torch.rsqrt(stats.second_moment + eps)


def _nominal_direction(stats: LeafStats, eps: float):
    return mean_of_momenta(stats.momentum) * torch.rsqrt(stats.second_moment + eps)


class RMS:
    def __init__(self, eps: float = EPS):
        self.eps = float(eps)

    def apply(self, x, stats: LeafStats):
        return x * torch.rsqrt(stats.second_moment + self.eps)


class Identity:
    def apply(self, x, stats: LeafStats):
        return x


class CenteredRMS(RMS):
    def apply(self, x, stats: LeafStats):
        return _rms_direction(x, stats, True, self.eps)


class _Limited:
    def __init__(self, k: float = 4.0, center: bool = False, eps: float = EPS):
        if not k > 0:
            raise ValueError(f"the limit k must be positive, got k={k}")
        self.k, self.center, self.eps = float(k), bool(center), float(eps)


class ClippedRMS(_Limited):
    def apply(self, x, stats: LeafStats):
        pre = _rms_direction(x, stats, self.center, self.eps)
        bound = self.k * torch.abs(_nominal_direction(stats, self.eps))
        return torch.minimum(torch.maximum(pre, -bound), bound)


class TensorLimitedRMS(_Limited):
    def apply(self, x, stats: LeafStats):
        pre = _rms_direction(x, stats, self.center, self.eps)
        size_sq = torch.square(pre).mean()
        limit_sq = self.k**2 * torch.square(_nominal_direction(stats, self.eps)).mean()
        one = torch.ones_like(size_sq)
        over = size_sq > limit_sq
        ratio = torch.where(over, limit_sq / torch.where(over, size_sq, one), one)
        factor = torch.where(ratio > 0, torch.sqrt(torch.where(ratio > 0, ratio, one)), torch.zeros_like(ratio))
        return pre * factor


class BiasCorrectedRMS(RMS):
    def apply(self, x, stats: LeafStats):
        if stats.second_moment_decay is None:
            raise ValueError("bias_corrected_rms needs LeafStats.second_moment_decay, which these features leave None")
        beta2 = stats.second_moment_decay
        # a tensor exponent: torch.pow(x, 3.0) multiplies (x * x * x), which rounds unlike XLA's pow
        t = torch.tensor(float(stats.step + 1), dtype=torch.float32, device=beta2.device)
        correction = torch.clamp(1.0 - torch.pow(beta2, t), min=1e-12)
        return x * torch.rsqrt(stats.second_moment / correction + self.eps)
