"""The ``mlp`` network in PyTorch: ``n_inputs -> hidden (ReLU) -> heads``, per element."""

from __future__ import annotations

import torch


class MLP:
    """The per-element MLP of plugins/network/mlp.py, weights ``(fan_in, fan_out)`` as there."""

    def __init__(self, weights, biases, heads):
        if len(weights) != len(biases) or not weights:
            raise ValueError(f"an mlp needs as many weights as biases (got {len(weights)} and {len(biases)})")
        self.weights, self.biases, self.heads = list(weights), list(biases), tuple(heads)
        if self.weights[-1].shape[1] != len(self.heads):
            raise ValueError(f"the last layer has {self.weights[-1].shape[1]} outputs for {len(self.heads)} heads")

    def __call__(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        h = inputs
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.addmm(b, h.reshape(-1, h.shape[-1]), w).reshape(*inputs.shape[:-1], w.shape[1])
            if i < last:
                h = torch.relu(h)
        return {name: h[..., i] for i, name in enumerate(self.heads)}
