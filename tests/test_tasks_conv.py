"""The ``conv`` task against a direct numpy convolution."""

import math

import jax
import numpy as np
import pytest
from test_tasks import FakeImages, numpy_cross_entropy

import lofw
from lofw.tasks import build_task
from lofw_plugins.task.conv import Conv


def numpy_conv_same(x, w, b, stride):
    """Direct loops: TensorFlow SAME padding, NHWC input, HWIO kernel."""
    n, h, wd, _ = x.shape
    k = w.shape[0]
    out_h, out_w = math.ceil(h / stride), math.ceil(wd / stride)
    pad_h = max((out_h - 1) * stride + k - h, 0)
    pad_w = max((out_w - 1) * stride + k - wd, 0)
    xp = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((n, out_h, out_w, w.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j, :] = np.einsum("nabc,abcd->nd", patch, w)
    return out + b


def numpy_conv_logits(params, images, strides):
    h = np.asarray(images, np.float64)
    for i, s in enumerate(strides):
        p = params[f"conv_{i}"]
        h = np.maximum(numpy_conv_same(h, np.asarray(p["w"], np.float64), np.asarray(p["b"]), s), 0)
    h = h.mean(axis=(1, 2))
    return h @ np.asarray(params["linear"]["w"], np.float64) + np.asarray(params["linear"]["b"])


def test_cifar10_conv_shape_has_56970_parameters():
    task = Conv(FakeImages(shape=(32, 32, 3), n=20))
    params = task.init(jax.random.key(0))
    assert sum(x.size for x in jax.tree.leaves(params)) == 56_970
    assert params["conv_0"]["w"].shape == (3, 3, 3, 32)  # HWIO
    assert params["conv_2"]["w"].shape == (3, 3, 64, 64)
    w = np.asarray(params["conv_1"]["w"])
    assert np.abs(w).max() <= 2 / math.sqrt(3 * 3 * 32) + 1e-7
    assert np.std(w) * math.sqrt(288) == pytest.approx(0.8796, rel=0.03)
    assert not np.any(np.asarray(params["conv_0"]["b"]))


def test_logits_and_loss_match_a_direct_convolution():
    size = 8  # 8 -> 4 -> 4 -> 2: strides 2 pad (0, 1), SAME's asymmetric case, in layers 1 and 3
    task = Conv(FakeImages(shape=(size, size, 2), n=20), channels=(3, 4, 5), strides=(2, 1, 2), batch_size=4)
    params = jax.tree.map(lambda x: x + 0.05, task.init(jax.random.key(1)))  # non-zero biases
    batch = task.sample_batch(jax.random.key(2))
    ref = numpy_conv_logits(params, batch["image"], (2, 1, 2))
    np.testing.assert_allclose(task.logits(params, batch["image"]), ref, rtol=1e-4, atol=1e-5)
    assert float(task.loss(params, batch)) == pytest.approx(numpy_cross_entropy(ref, np.asarray(batch["label"])), rel=1e-5)


def test_conv_builds_from_a_spec_and_vmaps():
    task = build_task({"name": "conv", "dataset": "digits", "channels": [4, 8], "strides": [2, 1], "batch_size": 8})
    assert isinstance(task, Conv) and task.max_meta_loss == pytest.approx(1.5 * math.log(10))

    def one(key):
        params = task.init(key)
        return jax.value_and_grad(task.loss)(params, task.sample_batch(key))

    losses, grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 3))
    assert losses.shape == (3,) and np.all(np.isfinite(losses))
    assert grads["conv_0"]["w"].shape == (3, 3, 3, 1, 4)


def test_mismatched_channels_and_strides_is_a_config_error():
    with pytest.raises(lofw.ConfigError, match="one entry per convolution"):
        build_task({"name": "conv", "dataset": "digits", "channels": [4, 8], "strides": [2]})
