"""The ``digits`` dataset: splits, batches drawn on device, pixel scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

import lofw
from lofw.interfaces.dataset import SPLITS
from lofw.tasks import build_dataset
from lofw_plugins.dataset.digits import Digits


@pytest.fixture(scope="module")
def digits():
    return build_dataset("digits")


def test_registered_and_split_sizes(digits):
    assert lofw.components("dataset")["digits"] is Digits
    assert {s: digits.size(s) for s in SPLITS} == {
        "train": 1200, "inner_valid": 150, "outer_valid": 150, "test": 297,
    }
    assert digits.image_shape == (8, 8, 1)
    assert digits.num_classes == 10
    for s in SPLITS:
        assert digits.images[s].dtype == jnp.uint8
        assert digits.labels[s].dtype == jnp.int32


def test_splits_are_the_documented_slices(digits):
    ref = load_digits()
    offsets = {"train": 0, "inner_valid": 1200, "outer_valid": 1350, "test": 1500}
    for split, start in offsets.items():
        n = digits.size(split)
        np.testing.assert_array_equal(np.asarray(digits.images[split])[..., 0], ref.images[start:start + n])
        np.testing.assert_array_equal(np.asarray(digits.labels[split]), ref.target[start:start + n])


@pytest.mark.parametrize("split", SPLITS)
def test_sample_matches_sklearn_pixels_over_16(digits, split):
    key = jax.random.key(3)
    batch = jax.jit(lambda k: digits.sample(k, 64, split))(key)
    assert batch["image"].shape == (64, 8, 8, 1) and batch["image"].dtype == jnp.float32
    assert batch["label"].shape == (64,) and batch["label"].dtype == jnp.int32
    idx = np.asarray(jax.random.randint(key, (64,), 0, digits.size(split)))
    start = {"train": 0, "inner_valid": 1200, "outer_valid": 1350, "test": 1500}[split]
    ref = load_digits()
    np.testing.assert_allclose(batch["image"][..., 0], ref.images[start + idx] / 16.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(batch["label"], ref.target[start + idx])
    assert float(batch["image"].min()) >= 0.0 and float(batch["image"].max()) <= 1.0


def test_sample_is_a_pure_function_of_the_key_and_vmaps(digits):
    keys = jax.random.split(jax.random.key(0), 5)
    batches = jax.vmap(lambda k: digits.sample(k, 16))(keys)
    assert batches["image"].shape == (5, 16, 8, 8, 1)
    again = digits.sample(keys[2], 16)
    np.testing.assert_array_equal(batches["image"][2], again["image"])
    assert not np.array_equal(batches["label"][0], batches["label"][1])


def test_uniform_sampling_covers_the_split(digits):
    # 20 000 draws from 150 examples: every example appears (P(miss) ~ 150 e^-133).
    batch = digits.sample(jax.random.key(1), 20_000, "inner_valid")
    labels = np.asarray(batch["label"])
    expected = np.bincount(np.asarray(digits.labels["inner_valid"]), minlength=10) / 150
    np.testing.assert_allclose(np.bincount(labels, minlength=10) / 20_000, expected, atol=0.015)


def test_unknown_split_is_a_clear_error(digits):
    with pytest.raises(lofw.ConfigError, match="unknown split 'valid'.*'inner_valid'"):
        digits.sample(jax.random.key(0), 4, "valid")
