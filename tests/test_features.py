"""STAR's features against the independent reference in star_reference.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from star_reference import ReferenceAccumulators

import lofw
from lofw_plugins.features.adafactor import AdafactorFeatures
from lofw_plugins.features.factored import factored_dims

SHAPES = [(), (6,), (4, 7), (7, 4), (5, 5), (3, 3, 2, 4), (2, 5, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_features_match_reference(shape):
    features = AdafactorFeatures()
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    param = jax.random.normal(keys[0], shape)
    state = features.init_leaf(param)
    ref = ReferenceAccumulators(shape)
    for t in range(3):
        grad = jax.random.normal(keys[1 + t], shape) * (0.1 + t)
        state, stats, feats = features.update_leaf(grad, param, state, jnp.asarray(t, jnp.int32))
        ref.step(np.asarray(grad))
        expected = ref.features(np.asarray(grad), np.asarray(param), t)
        got = feats.dense(shape)
        assert got.shape == shape + (39,)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(np.asarray(stats.momentum), np.stack(ref.m, -1), rtol=1e-5, atol=1e-7)
        # 1 - 0.999 in float32 carries a 1.3e-5 relative error.
        np.testing.assert_allclose(np.asarray(stats.second_moment), ref.v, rtol=5e-5, atol=1e-9)


def test_first_step_time_features_are_tanh_minus_one():
    features = AdafactorFeatures()
    p = jnp.ones((3, 2))
    _, _, feats = features.update_leaf(p, p, features.init_leaf(p), jnp.asarray(0, jnp.int32))
    np.testing.assert_allclose(np.asarray(feats.globals), np.tanh(-1.0) * np.ones(11), rtol=1e-6)


@pytest.mark.parametrize(
    "shape, dims",
    [((3,), None), ((), None), ((10, 10), (0, 1)), ((4, 9), (0, 1)), ((9, 4), (1, 0)),
     ((3, 3, 8, 16), (2, 3)), ((3, 3, 16, 8), (3, 2)), ((5, 3, 3, 1), (2, 0))],
)
def test_factored_dims(shape, dims):
    assert factored_dims(shape) == dims


def test_conv_kernel_factored_state_shapes():
    state = AdafactorFeatures().init_leaf(jnp.zeros((3, 3, 8, 16)))
    assert state.row.shape == (3, 3, 8, 3)  # drops the largest axis (16)
    assert state.col.shape == (3, 3, 16, 3)  # drops the second largest (8)
    assert state.diag is None


def test_decay_offsets_are_learned_decays():
    features = AdafactorFeatures()
    theta = 0.05
    shifted = jax.tree_util.tree_map(lambda x: x, features)
    shifted = eqx_set(shifted, "momentum_offsets", jnp.full(3, theta))
    beta_m, _, _ = shifted.decays()
    expected = 1 - (1 - np.array([0.9, 0.99, 0.999])) * np.exp(10 * theta)
    np.testing.assert_allclose(np.asarray(beta_m), expected, rtol=1e-6)
    grad = jnp.array([1.0, 2.0])
    state, stats, _ = shifted.update_leaf(grad, grad, shifted.init_leaf(grad), jnp.asarray(0))
    np.testing.assert_allclose(np.asarray(stats.momentum), (1 - expected)[None, :] * np.asarray(grad)[:, None], rtol=2e-5)


def test_decays_clipped_except_momentum():
    features = eqx_set(AdafactorFeatures(), "rms_offset", jnp.full(1, 1.0))
    features = eqx_set(features, "momentum_offsets", jnp.full(3, 1.0))
    beta_m, beta_v, _ = features.decays()
    assert float(beta_v) == 0.0  # 1 - 0.001 * e^10 < 0, clipped
    assert float(beta_m[-1]) < 0.0  # momenta are not clipped (reference behaviour)


def eqx_set(module, field, value):
    import equinox as eqx

    return eqx.tree_at(lambda m: getattr(m, field), module, value)


def test_adafactor_has_seven_meta_parameters():
    assert lofw.count_meta_parameters(AdafactorFeatures()) == 7
    assert AdafactorFeatures().n_inputs == 39


def test_rms_scales_value_and_derivatives():
    from lofw_plugins.features.adafactor import _rms_scales

    full = jnp.arange(6.0).reshape(2, 3) + 1
    column = jnp.array([[2.0], [5.0]])  # a factored channel, broadcast along axis 1

    def f(a):
        return _rms_scales([jnp.square(full * a), jnp.square(column * a * a)])

    expected = [1 / np.sqrt(1e-5 + np.mean((np.asarray(full) * 1.3) ** 2)),
                1 / np.sqrt(1e-5 + np.mean((np.asarray(column) * 1.69) ** 2))]
    np.testing.assert_allclose(np.asarray(f(1.3)), expected, rtol=1e-6)
    fd = (f(1.3 + 1e-3) - f(1.3 - 1e-3)) / 2e-3
    np.testing.assert_allclose(np.asarray(jax.jacrev(f)(1.3)), np.asarray(fd), rtol=2e-3)
    np.testing.assert_allclose(np.asarray(jax.jvp(f, (1.3,), (1.0,))[1]), np.asarray(fd), rtol=2e-3)


@pytest.mark.parametrize(
    "shape, row_length",
    [((784, 128), 128), ((5, 77, 32), 32), ((4096,), 128), ((3, 99), None), ((1000, 7), None), ((), None)],
    ids=str,
)
def test_sums_by_rows_match_float64(shape, row_length):
    # Large tensors are summed row by row, then over the rows (spread over the cores);
    # others in one sequential float32 loop, whose error grows with the
    # size (1.5e-6 relative for the 7000 elements here): hence 1e-5.
    from lofw_plugins.features.adafactor import _row_length, _sums

    size = int(np.prod(shape))
    assert _row_length(size) == row_length
    xs = tuple(jax.random.normal(k, shape) * (i + 1) for i, k in enumerate(jax.random.split(jax.random.PRNGKey(0), 3)))
    got = _sums(tuple(jnp.square(x) for x in xs))
    for x, s in zip(xs, got):
        np.testing.assert_allclose(float(s), np.sum(np.asarray(x, np.float64) ** 2), rtol=1e-5)
    tangent = jax.jvp(lambda a: _sums((a * xs[0],))[0], (2.0,), (1.0,))[1]
    np.testing.assert_allclose(float(tangent), np.sum(np.asarray(xs[0], np.float64)), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape", [(64, 48), (3, 3, 8, 16), (6,), (160, 96)], ids=str)
def test_scales_are_rms_over_the_whole_tensor(shape):
    # Factored channels are reduced over their vectors, not the broadcast
    # tensor; the two orders of summation agree to float32 rounding (1e-6).
    features = AdafactorFeatures()
    param = jax.random.normal(jax.random.PRNGKey(0), shape)
    grad = jax.random.normal(jax.random.PRNGKey(1), shape)
    _, _, feats = features.update_leaf(grad, param, features.init_leaf(param), jnp.asarray(0, jnp.int32))
    for c, s in zip(feats.channels, np.asarray(feats.scales)):
        full = np.broadcast_to(np.asarray(c, np.float64), shape)
        np.testing.assert_allclose(s, 1.0 / np.sqrt(1e-5 + np.mean(full**2)), rtol=1e-6)
