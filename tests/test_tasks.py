"""The ``image_mlp`` task, the classification loss and normaliser, and ``build_task``."""

import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array

import lofw
from lofw.tasks import build_task
from lofw_plugins.dataset.image_dataset import AbstractImageDataset, split_train, to_device
from lofw_plugins.task.classification import MAX_META_LOSS, normalize_loss
from lofw_plugins.task.image_mlp import ImageMLP


class FakeImages(AbstractImageDataset):
    """Random uint8 images of a given shape (a stand-in for the tfds datasets)."""

    images: dict[str, Array]
    labels: dict[str, Array]
    max_value: ClassVar[float] = 255.0
    num_classes: ClassVar[int] = 10

    def __init__(self, shape=(28, 28, 1), n=50, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        y = rng.integers(0, 10, (n,))
        splits = split_train(x, y)
        splits["test"] = (x[:10], y[:10])
        self.images, self.labels = to_device(splits, "fake")


def numpy_mlp_logits(params, images, hidden, act, layer_norm):
    h = np.asarray(images, np.float64).reshape(len(images), -1)
    for i in range(hidden):
        h = h @ np.asarray(params[f"linear_{i}"]["w"], np.float64) + np.asarray(params[f"linear_{i}"]["b"])
        if layer_norm:
            mu = h.mean(-1, keepdims=True)
            var = ((h - mu) ** 2).mean(-1, keepdims=True)
            ln = params[f"layer_norm_{i}"]
            h = (h - mu) / np.sqrt(var + 1e-5) * np.asarray(ln["scale"]) + np.asarray(ln["offset"])
        h = act(h)
    last = params[f"linear_{hidden}"]
    return h @ np.asarray(last["w"], np.float64) + np.asarray(last["b"])


def numpy_cross_entropy(logits, labels):
    logits = logits - logits.max(-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.mean(log_p[np.arange(len(labels)), labels])


def n_params(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def test_fmnist_mlp_shape_has_118282_parameters():
    task = ImageMLP(FakeImages(), hidden_sizes=(128, 128))
    params = task.init(jax.random.key(0))
    assert n_params(params) == 118_282
    assert task.layer_sizes == (784, 128, 128, 10)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))


def test_init_is_truncated_normal_over_sqrt_fan_in_with_zero_biases():
    task = ImageMLP(FakeImages(), hidden_sizes=(128, 128))
    params = task.init(jax.random.key(1))
    w = np.asarray(params["linear_0"]["w"])
    bound = 2 / math.sqrt(784)
    assert np.abs(w).max() <= bound + 1e-7
    assert np.abs(w).max() > 0.99 * bound
    # std of N(0,1) cut to [-2, 2] is 0.87962566 (closed form); 100k samples -> ~0.3% error.
    assert np.std(w) * math.sqrt(784) == pytest.approx(0.8796257, rel=0.01)
    for i in range(3):
        assert not np.any(np.asarray(params[f"linear_{i}"]["b"]))
    other = task.init(jax.random.key(2))
    assert not np.allclose(other["linear_0"]["w"], w)


@pytest.mark.parametrize(
    "activation, act, layer_norm",
    [("relu", lambda h: np.maximum(h, 0), False), ("tanh", np.tanh, True)],
)
def test_logits_and_loss_match_numpy(activation, act, layer_norm):
    task = ImageMLP(FakeImages(shape=(4, 4, 2)), hidden_sizes=(7, 5), activation=activation,
                    layer_norm=layer_norm, batch_size=6)
    params = task.init(jax.random.key(0))
    if layer_norm:  # move scale/offset off their init so they are exercised
        params = jax.tree.map(lambda x: x + 0.1, params)
        assert set(params) == {"linear_0", "linear_1", "linear_2", "layer_norm_0", "layer_norm_1"}
    batch = task.sample_batch(jax.random.key(5))
    assert batch["image"].shape == (6, 4, 4, 2)
    ref = numpy_mlp_logits(params, batch["image"], 2, act, layer_norm)
    np.testing.assert_allclose(task.logits(params, batch["image"]), ref, rtol=1e-4, atol=1e-5)
    expected = numpy_cross_entropy(ref, np.asarray(batch["label"]))
    assert float(task.loss(params, batch)) == pytest.approx(expected, rel=1e-5)


def test_normalizer_clips_and_maps_nonfinite_to_the_maximum():
    assert MAX_META_LOSS == pytest.approx(1.5 * math.log(10))
    raw = jnp.array([-1.0, 0.0, 1.25, 4.0, 100.0, jnp.nan, jnp.inf, -jnp.inf])
    m = MAX_META_LOSS
    expected = [0.0, 0.0, 1.25, m, m, m, m, m]
    np.testing.assert_allclose(jax.vmap(normalize_loss)(raw), expected, rtol=1e-6)
    task = build_task("digits_mlp")
    assert task.max_meta_loss == pytest.approx(m)
    assert float(task.normalizer(jnp.float32(jnp.nan))) == pytest.approx(m)


def test_registry_digits_mlp_is_64_32_32_10_and_vmaps_over_particles():
    task = build_task("digits_mlp")
    assert isinstance(task, lofw.AbstractTask)
    assert task.layer_sizes == (64, 32, 32, 10) and task.batch_size == 128

    @jax.jit
    def particles(keys):
        def one(key):
            k_init, k_batch = jax.random.split(key)
            params = task.init(k_init)
            batch = task.sample_batch(k_batch)
            loss, grads = jax.value_and_grad(task.loss)(params, batch)
            return loss, grads

        return jax.vmap(one)(keys)

    losses, grads = particles(jax.random.split(jax.random.key(0), 4))
    assert losses.shape == (4,) and np.all(np.isfinite(losses))
    # a uniform guess over 10 classes costs ln 10; a fresh network is near it
    assert np.all(np.abs(np.asarray(losses) - math.log(10)) < 0.5)
    assert grads["linear_0"]["w"].shape == (4, 64, 32)
    assert len(set(np.asarray(losses).round(6))) == 4


def test_gradient_descent_on_digits_mlp_learns():
    task = build_task({"name": "image_mlp", "dataset": {"name": "digits"}, "hidden_sizes": [32],
                       "batch_size": 64})

    @jax.jit
    def train(params, key):
        def step(p, k):
            g = jax.grad(task.loss)(p, task.sample_batch(k))
            return jax.tree.map(lambda a, b: a - 0.5 * b, p, g), None

        params, _ = jax.lax.scan(step, params, jax.random.split(key, 200))
        return params

    params = task.init(jax.random.key(0))
    valid = task.dataset.sample(jax.random.key(9), 150, "outer_valid")
    before = float(task.loss(params, valid))
    params = train(params, jax.random.key(1))
    assert float(task.loss(params, valid)) < 0.5 * before
    assert float(task.accuracy(params, valid)) > 0.8


def test_inline_spec_accepts_a_bare_dataset_name_and_converts_lists():
    task = build_task({"name": "image_mlp", "dataset": "digits", "hidden_sizes": [8], "layer_norm": True})
    assert task.hidden_sizes == (8,) and task.layer_norm
    assert build_task(task) is task


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_task", r"unknown task 'no_such_task'; valid choices: .*'digits_mlp'"),
        ({"name": "mlp_task", "dataset": "digits"}, r"unknown task 'mlp_task'; valid choices: .*'image_mlp'"),
        ({"dataset": "digits"}, r"missing `name`"),
        ({"name": "image_mlp"}, r"needs a `dataset`; valid choices: .*'digits'"),
        ({"name": "image_mlp", "dataset": {"name": "digitz"}}, r"task\.dataset: unknown dataset 'digitz'"),
        ({"name": "image_mlp", "dataset": "digits", "hidden": [3]}, r"no argument 'hidden'.*'hidden_sizes'"),
        ({"name": "image_mlp", "dataset": "digits", "activation": "swish"},
         r"task\.activation: bad value 'swish'.*'relu'"),
        ({"name": "image_mlp", "dataset": "digits", "batch_size": "many"}, r"task\.batch_size: bad value 'many'"),
        ({"name": "image_mlp", "dataset": "digits", "hidden_sizes": [0]}, r"hidden_sizes must be positive"),
    ],
)
def test_bad_specs_raise_one_clear_config_error(spec, message):
    with pytest.raises(lofw.ConfigError, match=message):
        build_task(spec)


def test_registry_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("tasks:\n  broken:\n    name: image_mlp\n    dataset: {name: nope}\n")
    registry = lofw.load_registry(path)
    with pytest.raises(lofw.ConfigError, match=rf"{path}: tasks\.broken\.dataset: unknown dataset 'nope'"):
        build_task("broken", registry=registry)


def test_digits_mlp_and_digits_pass_the_shared_contract_suite():
    from lofw.testing import check_component

    task = build_task("digits_mlp")
    check_component(task)
    check_component(task.dataset)
