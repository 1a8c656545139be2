"""The ``resnet`` task against a numpy ResNet-v2 written with direct loops, and its counts."""

import math

import jax
import numpy as np
import optax
import pytest
from test_tasks import FakeImages, numpy_cross_entropy
from test_tasks_conv import numpy_conv_same

import lofw
from lofw.tasks import build_task
from lofw.testing import check_component, losses_before_and_after
from lofw_plugins.task.resnet import ResNet

SMALL = dict(channels=(4, 4, 6), blocks_per_group=(2, 1, 1), strides=(1, 1, 2), initial_channels=4,
             initial_kernel=3, initial_stride=2, initial_max_pool=True, batch_size=3)


def small_count(norm, c_img=2, classes=10):
    """Written out: stem 3x3x2x4; blocks 4->4 (x2, s1), 4->4 (s1), 4->6 (s2, projection); head."""
    n = (lambda c: 2 * c) if norm else (lambda c: 0)
    block = lambda ci, co, proj: n(ci) + 9 * ci * co + n(co) + 9 * co * co + (ci * co if proj else 0)  # noqa: E731
    return (3 * 3 * c_img * 4 + block(4, 4, False) * 2 + block(4, 4, False) + block(4, 6, True)
            + n(6) + 6 * classes + classes)


@pytest.mark.parametrize("normalization", ["layer_norm", "none"])
def test_parameter_count_matches_the_formula(normalization):
    task = ResNet(FakeImages(shape=(9, 9, 2), n=20), normalization=normalization, **SMALL)
    params = jax.eval_shape(task.init, jax.random.key(0))
    assert sum(x.size for x in jax.tree.leaves(params)) == small_count(normalization == "layer_norm")
    assert "projection" in params["block_2_0"] and "projection" not in params["block_0_0"]
    assert "projection" not in params["block_1_0"]


def numpy_ln(x, p):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * p["scale"] + p["offset"]


def numpy_max_pool_same(x, k=3, s=2):
    n, h, w, c = x.shape
    oh, ow = math.ceil(h / s), math.ceil(w / s)
    ph, pw = max((oh - 1) * s + k - h, 0), max((ow - 1) * s + k - w, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), constant_values=-np.inf)
    return np.stack([np.stack([xp[:, i * s:i * s + k, j * s:j * s + k].max(axis=(1, 2)) for j in range(ow)], 1)
                     for i in range(oh)], 1)


def numpy_resnet_logits(params, images, norm):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    ln = numpy_ln if norm else (lambda x, _: x)
    conv = lambda x, w, s: numpy_conv_same(x, w, 0.0, s)  # noqa: E731
    h = numpy_max_pool_same(conv(np.asarray(images, np.float64), p["initial"]["w"], 2))
    for name, stride in (("block_0_0", 1), ("block_0_1", 1), ("block_1_0", 1), ("block_2_0", 2)):
        b = p[name]
        a = relu(ln(h, b["norm_1"]))
        shortcut = conv(a, b["projection"], stride) if "projection" in b else h
        h = shortcut + conv(relu(ln(conv(a, b["conv_1"], stride), b["norm_2"])), b["conv_2"], 1)
    pooled = relu(ln(h, p["final_norm"])).mean(axis=(1, 2))
    return pooled @ p["linear"]["w"] + p["linear"]["b"]


@pytest.mark.parametrize("normalization", ["layer_norm", "none"])
def test_logits_and_loss_match_numpy(normalization):
    task = ResNet(FakeImages(shape=(9, 9, 2), n=20), normalization=normalization, **SMALL)

    @jax.jit  # one compilation instead of one per eager primitive
    def run(key):
        params = jax.tree.map(lambda x: x + 0.03, task.init(key))  # off-init norms and bias
        batch = task.sample_batch(jax.random.fold_in(key, 1))
        return params, batch, task.logits(params, batch["image"]), task.loss(params, batch)

    params, batch, logits, loss = run(jax.random.key(1))
    ref = numpy_resnet_logits(params, batch["image"], normalization == "layer_norm")
    np.testing.assert_allclose(logits, ref, rtol=2e-4, atol=2e-5)
    assert float(loss) == pytest.approx(numpy_cross_entropy(ref, np.asarray(batch["label"])), rel=1e-4)


def test_digits_resnet_starts_near_chance_learns_under_adam_and_passes_the_contract():
    task = build_task("digits_resnet")
    assert task.chance_loss == pytest.approx(math.log(10)) and task.max_meta_loss == pytest.approx(1.5 * math.log(10))
    tx = optax.adam(3e-3)

    before, after = losses_before_and_after(task, tx, key=jax.random.key(0), valid_batch=256, valid_key=jax.random.key(9))
    assert abs(float(before) - math.log(10)) < 0.5
    assert float(after) < float(before) - 0.5
    check_component(task)


def test_bad_group_spec_is_a_config_error():
    with pytest.raises(lofw.ConfigError, match="one entry per group"):
        build_task({"name": "resnet", "dataset": "digits", "channels": [4, 8], "blocks_per_group": [1]})
