"""The built-in magnitude controllers in PyTorch (plugins/magnitude/magnitudes.py)."""

from __future__ import annotations

import torch


class Exp:
    uses_head = True

    def __init__(self, beta: float = 1e-3):
        self.beta = float(beta)

    def __call__(self, head):
        return torch.exp(self.beta * head)


class Constant:
    uses_head = False

    def __init__(self, value: float = 1.0):
        if not value > 0:
            raise ValueError(f"a magnitude must be positive, got value={value}")
        self.value = float(value)
        self._value = torch.tensor(self.value, dtype=torch.float32)  # 0-d: multiplies a tensor on any device

    def __call__(self, head):
        return self._value
