"""The ``image_mlp`` task: an MLP classifier on flattened images.

The reference's ``ImageMLP_FashionMnist_Relu128x128`` is this task with
``hidden_sizes=(128, 128)``, ``activation="relu"``, batch 128 on
Fashion-MNIST: 784 -> 128 -> 128 -> 10, 118,282 parameters. Each hidden layer is

    h <- act(LayerNorm(h W + b))      (LayerNorm only with ``layer_norm=True``)

and the output layer is linear. LayerNorm (over features, eps 1e-5) has a
learned scale (init 1) and offset (init 0), as haiku's ``LayerNorm`` with
``create_scale=create_offset=True``.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

import lofw
from lofw_plugins.task.activations import ACTIVATIONS, Activation
from lofw_plugins.task.classification import AbstractClassificationTask, dataset_geometry, truncated_normal
from lofw_plugins.task.layers import layer_norm

Params = dict[str, dict[str, Float[Array, "..."]]]


class ImageMLP(AbstractClassificationTask):
    """MLP on flattened images with softmax cross-entropy.

    Args:
        dataset: an image-classification dataset (supplied by ``build_task``).
        hidden_sizes: widths of the hidden layers.
        activation: the hidden non-linearity.
        layer_norm: normalise each hidden pre-activation.
        batch_size: examples per training batch.

    Parameters (``init``): ``{"linear_i": {"w": [fan_in, fan_out], "b": [fan_out]}}``
    for ``i = 0 .. len(hidden_sizes)`` and, with layer norm,
    ``{"layer_norm_i": {"scale", "offset"}}`` per hidden layer.
    """

    dataset: lofw.AbstractDataset
    hidden_sizes: tuple[int, ...] = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    layer_norm: bool = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    input_size: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)

    def __init__(
        self,
        dataset: lofw.AbstractDataset,
        hidden_sizes: tuple[int, ...] = (128, 128),
        activation: Activation = "relu",
        layer_norm: bool = False,
        batch_size: int = 128,
    ):
        if any(int(h) < 1 for h in hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {list(hidden_sizes)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid choices: {sorted(ACTIVATIONS)}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        image_shape, num_classes = dataset_geometry(dataset, "image_mlp")
        self.dataset = dataset
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.activation = activation
        self.layer_norm = bool(layer_norm)
        self.batch_size = int(batch_size)
        self.input_size = math.prod(image_shape)
        self.num_classes = num_classes

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """``(input_size, *hidden_sizes, num_classes)``."""
        return (self.input_size, *self.hidden_sizes, self.num_classes)

    def init(self, key: PRNGKeyArray) -> Params:
        """Truncated-normal ``1/sqrt(fan_in)`` weights, zero biases, unit LayerNorm scales."""
        sizes = self.layer_sizes
        keys = jax.random.split(key, len(sizes) - 1)
        params: Params = {}
        for i, (k, fan_in, fan_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
            params[f"linear_{i}"] = {
                "w": truncated_normal(k, (fan_in, fan_out), fan_in),
                "b": jnp.zeros((fan_out,), jnp.float32),
            }
            if self.layer_norm and i < len(self.hidden_sizes):
                params[f"layer_norm_{i}"] = {
                    "scale": jnp.ones((fan_out,), jnp.float32),
                    "offset": jnp.zeros((fan_out,), jnp.float32),
                }
        return params

    def logits(self, params: Params, images: Float[Array, "b h w c"]) -> Float[Array, "b k"]:
        """Flatten, then the hidden layers, then the linear output layer."""
        act = ACTIVATIONS[self.activation]
        h = images.reshape(images.shape[0], -1)
        for i in range(len(self.hidden_sizes)):
            h = h @ params[f"linear_{i}"]["w"] + params[f"linear_{i}"]["b"]
            if self.layer_norm:
                h = layer_norm(h, params[f"layer_norm_{i}"]["scale"], params[f"layer_norm_{i}"]["offset"])
            h = act(h)
        last = params[f"linear_{len(self.hidden_sizes)}"]
        return h @ last["w"] + last["b"]
