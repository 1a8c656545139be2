"""The ``resnet`` task: a pre-activation (v2) residual network classifier.

Architecture (He et al. 2016, "Identity mappings in deep residual networks"),
on NHWC images::

    h = conv_{k x k, stride s}(x)                 initial convolution, no bias
    h = max_pool_{3x3, stride 2}(h)               only with ``initial_max_pool``
    for each group g (channels c_g, stride s_g), blocks_per_group[g] times:
        a = relu(N(h))
        shortcut = conv_1x1,s(a)  if the block changes channels or stride, else h
        h = shortcut + conv_3x3,1(relu(N(conv_3x3,s(a))))
    logits = mean_{H,W}(relu(N(h))) W + b

where ``s`` is ``s_g`` in the first block of a group and 1 in the others, and
``N`` is LayerNorm over the channels of each position (learned scale and
offset) or the identity (``normalization="none"``). Convolutions carry no
bias (as haiku's ``ResNet``; the norm's offset plays that part).

Why no batch norm: batch statistics make the loss depend on the whole batch
and need a running-average state beside the parameters; a state-free network
keeps ``loss(params, batch)`` a pure function, so it vmaps over seeds and
particles and jit-scans without a second state to thread. LayerNorm over
channels (per position) is the state-free choice closest in effect.

The reference's ``Resnet_MultiRuntime_*`` (haiku ResNet-v2 on 32x32
ImageNet: blocks (1, 1, 1, 1), channels (128, 256, 512, 512)) is closest to
the defaults here; which one the paper's Figure 4b used is not recorded.

Parameters, with ``n_c = 2 c`` for a norm over ``c`` channels (0 without norm)::

    initial      k * k * C_in * c_0'
    each block   n_{c_in} + 9 c_in c_out + n_{c_out} + 9 c_out^2  (+ c_in c_out with projection)
    final        n_{c_last} + c_last * K + K
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

import lofw
from lofw_plugins.task.classification import AbstractClassificationTask, dataset_geometry
from lofw_plugins.task.layers import (
    conv2d,
    conv_kernel,
    layer_norm,
    layer_norm_params,
    linear,
    linear_params,
    materialize,
    max_pool,
)

Normalization = Literal["layer_norm", "none"]
Params = dict[str, dict[str, Float[Array, "..."]]]


class ResNet(AbstractClassificationTask):
    """Pre-activation ResNet with basic (two 3x3 convolution) blocks.

    Args:
        dataset: an image-classification dataset (supplied by ``build_task``).
        channels: output channels of each group.
        blocks_per_group: residual blocks in each group (same length as ``channels``).
        strides: stride of each group's first block (default 1 for the first
            group, 2 for the others).
        initial_channels: channels of the initial convolution.
        initial_kernel: side of the initial convolution's kernel.
        initial_stride: stride of the initial convolution.
        initial_max_pool: a 3x3, stride-2 max-pool after the initial convolution.
        normalization: ``"layer_norm"`` (over channels) or ``"none"``.
        batch_size: examples per training batch.

    Parameters (``init``): ``{"initial": {"w"}, "block_<g>_<i>": {"norm_1", "conv_1",
    "norm_2", "conv_2"[, "projection"]}, "final_norm", "linear": {"w", "b"}}``; kernels
    are HWIO, a norm is ``{"scale", "offset"}`` (an empty dict without normalisation).
    """

    dataset: lofw.AbstractDataset
    channels: tuple[int, ...] = eqx.field(static=True)
    blocks_per_group: tuple[int, ...] = eqx.field(static=True)
    strides: tuple[int, ...] = eqx.field(static=True)
    initial_channels: int = eqx.field(static=True)
    initial_kernel: int = eqx.field(static=True)
    initial_stride: int = eqx.field(static=True)
    initial_max_pool: bool = eqx.field(static=True)
    normalization: str = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    input_channels: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)

    def __init__(
        self,
        dataset: lofw.AbstractDataset,
        channels: tuple[int, ...] = (128, 256, 512, 512),
        blocks_per_group: tuple[int, ...] = (1, 1, 1, 1),
        strides: tuple[int, ...] | None = None,
        initial_channels: int = 64,
        initial_kernel: int = 7,
        initial_stride: int = 2,
        initial_max_pool: bool = True,
        normalization: Normalization = "layer_norm",
        batch_size: int = 128,
    ):
        channels = tuple(int(c) for c in channels)
        blocks = tuple(int(b) for b in blocks_per_group)
        strides = tuple(int(s) for s in strides) if strides is not None else (1,) + (2,) * (len(channels) - 1)
        if not channels or len(blocks) != len(channels) or len(strides) != len(channels):
            raise ValueError(
                f"channels, blocks_per_group and strides need one entry per group, got "
                f"{list(channels)}, {list(blocks)} and {list(strides)}"
            )
        sizes = (*channels, *blocks, *strides, initial_channels, initial_kernel, initial_stride, batch_size)
        if any(int(x) < 1 for x in sizes):
            raise ValueError("channels, blocks, strides, initial sizes and batch_size must be positive")
        if normalization not in ("layer_norm", "none"):
            raise ValueError(f"unknown normalization {normalization!r}; valid choices: 'layer_norm', 'none'")
        image_shape, num_classes = dataset_geometry(dataset, "resnet")
        if len(image_shape) != 3:
            raise ValueError(f"resnet needs images [H, W, C], the dataset gives {image_shape}")
        self.dataset = dataset
        self.channels, self.blocks_per_group, self.strides = channels, blocks, strides
        self.initial_channels = int(initial_channels)
        self.initial_kernel = int(initial_kernel)
        self.initial_stride = int(initial_stride)
        self.initial_max_pool = bool(initial_max_pool)
        self.normalization = normalization
        self.batch_size = int(batch_size)
        self.input_channels = int(image_shape[-1])
        self.num_classes = num_classes

    def _blocks(self):
        """``(name, c_in, c_out, stride)`` of every block, in order."""
        c_in = self.initial_channels
        for g, (c_out, n, s) in enumerate(zip(self.channels, self.blocks_per_group, self.strides)):
            for i in range(n):
                yield f"block_{g}_{i}", c_in, c_out, s if i == 0 else 1
                c_in = c_out

    def _norm_params(self, size: int) -> dict:
        return layer_norm_params(size) if self.normalization == "layer_norm" else {}

    def _norm(self, p: dict, x: Float[Array, "... c"]) -> Float[Array, "... c"]:
        return layer_norm(x, p["scale"], p["offset"]) if self.normalization == "layer_norm" else x

    def init(self, key: PRNGKeyArray) -> Params:
        """Truncated-normal ``1/sqrt(fan_in)`` kernels and head, zero head bias, unit norms."""
        params: dict = {"initial": {"w": conv_kernel(self.initial_kernel, self.input_channels, self.initial_channels)}}
        for name, c_in, c_out, stride in self._blocks():
            params[name] = {
                "norm_1": self._norm_params(c_in),
                "conv_1": conv_kernel(3, c_in, c_out),
                "norm_2": self._norm_params(c_out),
                "conv_2": conv_kernel(3, c_out, c_out),
            }
            if c_in != c_out or stride != 1:
                params[name]["projection"] = conv_kernel(1, c_in, c_out)
        params["final_norm"] = self._norm_params(self.channels[-1])
        params["linear"] = linear_params(self.channels[-1], self.num_classes)
        return materialize(key, params)

    def logits(self, params: Params, images: Float[Array, "b h w c"]) -> Float[Array, "b k"]:
        """Initial convolution (and pool), pre-activation blocks, norm, pool, linear head."""
        h = conv2d(images, params["initial"]["w"], self.initial_stride)
        if self.initial_max_pool:
            h = max_pool(h)
        for name, c_in, c_out, stride in self._blocks():
            p = params[name]
            a = jax.nn.relu(self._norm(p["norm_1"], h))
            shortcut = conv2d(a, p["projection"], stride) if "projection" in p else h
            r = conv2d(a, p["conv_1"], stride)
            r = conv2d(jax.nn.relu(self._norm(p["norm_2"], r)), p["conv_2"], 1)
            h = shortcut + r
        h = jax.nn.relu(self._norm(params["final_norm"], h))
        return linear(params["linear"], jnp.mean(h, axis=(1, 2)))
