"""The ``mlp`` network in PyTorch: ``n_inputs -> hidden (ReLU) -> heads``, per element.

As the JAX network, the first layer is folded with the features: each
channel's scale multiplies its weight row, the step features fold into the
bias, and channels of each smaller (factored) shape meet the layer at their
own shape, so only the full-size channels are stacked.
"""

from __future__ import annotations

import math

import torch

from lofw.torch import LeafFeatures


class MLP:
    """The per-element MLP of plugins/network/mlp.py, weights ``(fan_in, fan_out)`` as there."""

    def __init__(self, weights, biases, heads):
        if len(weights) != len(biases) or not weights:
            raise ValueError(f"an mlp needs as many weights as biases (got {len(weights)} and {len(biases)})")
        self.weights, self.biases, self.heads = list(weights), list(biases), tuple(heads)
        if self.weights[-1].shape[1] != len(self.heads):
            raise ValueError(f"the last layer has {self.weights[-1].shape[1]} outputs for {len(self.heads)} heads")

    def __call__(self, features: LeafFeatures) -> dict[str, torch.Tensor]:
        channels = features.channels
        n = len(channels)
        w0 = self.weights[0]
        w_channels = w0[:n] * features.scales[:, None]
        b0 = self.biases[0] + features.globals @ w0[n:]
        groups: dict[tuple[int, ...], list[int]] = {}
        for k, c in enumerate(channels):
            groups.setdefault(tuple(c.shape), []).append(k)
        full, *smaller = sorted(groups, key=lambda shape: -math.prod(shape))
        ks = groups[full]
        stacked = torch.stack([channels[k] for k in ks], dim=-1).reshape(-1, len(ks))
        h = torch.addmm(b0, stacked, w_channels[ks]).reshape(*full, w0.shape[1])
        for shape in smaller:
            ks = groups[shape]
            h = h + torch.stack([channels[k] for k in ks], dim=-1) @ w_channels[ks]
        for w, b in zip(self.weights[1:], self.biases[1:]):
            h = torch.relu(h)
            h = torch.addmm(b, h.reshape(-1, h.shape[-1]), w).reshape(*full, w.shape[1])
        return {name: h[..., i] for i, name in enumerate(self.heads)}
