"""The ``conv`` task: a small convolutional classifier.

The reference's ``Conv_Cifar10_32x64x64`` is this task with its defaults on
CIFAR-10 (batch 128): three 3x3 convolutions with 32, 64, 64 channels and
strides 2, 1, 1, SAME padding, each followed by the activation (ReLU), then a
global average pool over height and width and a linear layer to the classes;
56,970 parameters. SAME padding follows XLA / TensorFlow: output size
``ceil(size / stride)``, total padding ``max((out - 1) * stride + k - size, 0)``
with the smaller half before.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

import lofw
from lofw_plugins.task.activations import ACTIVATIONS, Activation
from lofw_plugins.task.classification import AbstractClassificationTask, dataset_geometry, truncated_normal

Params = dict[str, dict[str, Float[Array, "..."]]]


class Conv(AbstractClassificationTask):
    """Strided convolutions, global average pooling and a linear head.

    Args:
        dataset: an image-classification dataset (supplied by ``build_task``).
        channels: output channels of each convolution.
        strides: stride of each convolution (same length as ``channels``).
        kernel_size: the square kernel's side.
        activation: the non-linearity after each convolution.
        batch_size: examples per training batch.

    Parameters (``init``): ``{"conv_i": {"w": [k, k, c_in, c_out] (HWIO), "b": [c_out]},
    "linear": {"w": [c_last, classes], "b": [classes]}}``, weights truncated-normal
    with ``fan_in = k * k * c_in``, biases zero.
    """

    dataset: lofw.AbstractDataset
    channels: tuple[int, ...] = eqx.field(static=True)
    strides: tuple[int, ...] = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    input_channels: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)

    def __init__(
        self,
        dataset: lofw.AbstractDataset,
        channels: tuple[int, ...] = (32, 64, 64),
        strides: tuple[int, ...] = (2, 1, 1),
        kernel_size: int = 3,
        activation: Activation = "relu",
        batch_size: int = 128,
    ):
        if len(channels) != len(strides) or not channels:
            raise ValueError(
                f"channels and strides need one entry per convolution, got {list(channels)} and {list(strides)}"
            )
        if any(int(c) < 1 for c in channels) or any(int(s) < 1 for s in strides) or int(kernel_size) < 1:
            raise ValueError("channels, strides and kernel_size must be positive")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid choices: {sorted(ACTIVATIONS)}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        image_shape, num_classes = dataset_geometry(dataset, "conv")
        if len(image_shape) != 3:
            raise ValueError(f"conv needs images [H, W, C], the dataset gives {image_shape}")
        self.dataset = dataset
        self.channels = tuple(int(c) for c in channels)
        self.strides = tuple(int(s) for s in strides)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.batch_size = int(batch_size)
        self.input_channels = int(image_shape[-1])
        self.num_classes = num_classes

    def init(self, key: PRNGKeyArray) -> Params:
        """Truncated-normal ``1/sqrt(fan_in)`` kernels (HWIO) and head, zero biases."""
        keys = jax.random.split(key, len(self.channels) + 1)
        k = self.kernel_size
        params: Params = {}
        c_in = self.input_channels
        for i, c_out in enumerate(self.channels):
            params[f"conv_{i}"] = {
                "w": truncated_normal(keys[i], (k, k, c_in, c_out), k * k * c_in),
                "b": jnp.zeros((c_out,), jnp.float32),
            }
            c_in = c_out
        params["linear"] = {
            "w": truncated_normal(keys[-1], (c_in, self.num_classes), c_in),
            "b": jnp.zeros((self.num_classes,), jnp.float32),
        }
        return params

    def logits(self, params: Params, images: Float[Array, "b h w c"]) -> Float[Array, "b k"]:
        """Convolutions (NHWC, HWIO, SAME), global average pool, linear head."""
        act = ACTIVATIONS[self.activation]
        h = images
        for i, stride in enumerate(self.strides):
            h = jax.lax.conv_general_dilated(
                h,
                params[f"conv_{i}"]["w"],
                window_strides=(stride, stride),
                padding="SAME",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
            h = act(h + params[f"conv_{i}"]["b"])
        h = jnp.mean(h, axis=(1, 2))
        return h @ params["linear"]["w"] + params["linear"]["b"]
