"""The stabiliser preconditioners of STAR's blackbox term against independent NumPy computations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lofw

EPS = 1e-6
# The lofw.testing contract of each runs in tests/test_contract.py (every
# registered preconditioner, every recipe).


def _stats(shape=(6, 5), seed=0, step=7, beta2=0.99, v_scale=1e-4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) + 0.7  # a non-zero mean, as a drifting head has
    stats = lofw.LeafStats(
        grad=jnp.asarray(rng.normal(size=shape), jnp.float32),
        param=jnp.asarray(rng.normal(size=shape), jnp.float32),
        momentum=jnp.asarray(0.3 * rng.normal(size=shape + (3,)), jnp.float32),
        second_moment=jnp.asarray(v_scale * rng.random(size=shape), jnp.float32),
        step=jnp.asarray(step, jnp.int32),
        second_moment_decay=jnp.asarray(beta2, jnp.float32),
    )
    return jnp.asarray(x, jnp.float32), stats


def _np(stats):
    return {k: np.asarray(getattr(stats, k), np.float64) for k in ("momentum", "second_moment")}


def _np_rms_direction(x, s, center):
    """``(pre, gain)``: ``x`` (centred over the tensor if ``center``) times ``gain = 1 / sqrt(v + eps)``."""
    xn = np.asarray(x, np.float64)
    if center:
        xn = xn - xn.mean()
    gain = 1.0 / np.sqrt(s["second_moment"] + EPS)
    return xn * gain, gain


def _build(name, **kw):
    return lofw.components("preconditioner")[name](**kw)


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=2e-5, atol=1e-9)


def test_centered_rms_matches_numpy():
    x, stats = _stats()
    s = _np(stats)
    xn = np.asarray(x, np.float64)
    expected = (xn - xn.mean()) / np.sqrt(s["second_moment"] + EPS)
    _close(_build("centered_rms").apply(x, stats), expected)
    # a constant direction gives no step (up to float32 rounding of the mean)
    out = np.asarray(_build("centered_rms").apply(jnp.full_like(x, 3.0), stats))
    assert np.max(np.abs(out)) <= 1e-6 * np.max(3.0 / np.sqrt(s["second_moment"] + EPS))


@pytest.mark.parametrize("center", [False, True])
def test_clipped_rms_matches_numpy(center):
    x, stats = _stats()
    s = _np(stats)
    pre, gain = _np_rms_direction(x, s, center)
    b = 4.0 * np.abs(s["momentum"].mean(axis=-1)) * gain
    expected = np.minimum(np.maximum(pre, -b), b)
    out = _build("clipped_rms", k=4.0, center=center).apply(x, stats)
    _close(out, expected)
    assert 0 < np.mean(np.abs(expected) == b) < 1  # the instance exercises both branches


@pytest.mark.parametrize("center", [False, True])
def test_tensor_limited_rms_matches_numpy(center):
    x, stats = _stats()
    s = _np(stats)
    pre, gain = _np_rms_direction(x, s, center)
    nominal = s["momentum"].mean(axis=-1) * gain
    ratio = np.sqrt(np.mean(pre**2)) / np.sqrt(np.mean(nominal**2))
    for k in (0.5 * ratio, 2.0 * ratio):  # limited, then untouched
        expected = pre * min(1.0, k / ratio)
        _close(_build("tensor_limited_rms", k=float(k), center=center).apply(x, stats), expected)
    # the limited direction's RMS is exactly k times the nominal's
    out = np.asarray(_build("tensor_limited_rms", k=1.0, center=center).apply(x, stats), np.float64)
    np.testing.assert_allclose(np.sqrt(np.mean(out**2)), np.sqrt(np.mean(nominal**2)), rtol=1e-5)


def test_tensor_limited_rms_zero_direction_stays_zero_and_differentiable():
    x, stats = _stats()
    pre = _build("tensor_limited_rms")
    _close(pre.apply(jnp.zeros_like(x), stats), np.zeros(x.shape))
    g = jax.grad(lambda a: jnp.sum(pre.apply(a * jnp.zeros_like(x), stats)))(1.0)
    assert np.isfinite(float(g))


def test_bias_corrected_rms_matches_numpy():
    x, stats = _stats(step=7, beta2=0.99)
    s = _np(stats)
    v_hat = s["second_moment"] / (1.0 - 0.99 ** 8)
    _close(_build("bias_corrected_rms").apply(x, stats), np.asarray(x, np.float64) / np.sqrt(v_hat + EPS))


def test_bias_corrected_rms_reads_the_features_decay():
    """Through the adafactor features, beta2 is the meta-learned decay and
    v_hat is the bias-corrected EMA: a constant gradient g gives v_hat = g**2."""
    feats = lofw.components("features")["adafactor"]()
    feats = eqx.tree_at(lambda f: f.rms_offset, feats, jnp.full((1,), 0.05, jnp.float32))
    beta2 = 1.0 - 1e-3 * np.exp(10 * 0.05)
    param = jnp.zeros((4, 3))
    state = feats.init_leaf(param)
    g = jnp.full((4, 3), 0.3)
    for t in range(5):
        state, stats, _ = feats.update_leaf(g, param, state, jnp.asarray(t, jnp.int32))
    np.testing.assert_allclose(float(stats.second_moment_decay), beta2, rtol=1e-6)
    out = _build("bias_corrected_rms").apply(jnp.ones((4, 3)), stats)
    _close(out, np.full((4, 3), 1.0 / np.sqrt(0.09 + EPS)))


def test_bias_corrected_rms_without_decay_says_what_to_do():
    x, stats = _stats()
    stats = lofw.LeafStats(stats.grad, stats.param, stats.momentum, stats.second_moment, stats.step)
    with pytest.raises(ValueError, match="second_moment_decay"):
        _build("bias_corrected_rms").apply(x, stats)


def test_bad_k_is_refused():
    for name in ("clipped_rms", "tensor_limited_rms"):
        with pytest.raises(ValueError, match="k must be positive"):
            _build(name, k=0.0)


@pytest.mark.parametrize(
    "recipe",
    ["star_centered", "star_clipped", "star_centered_clipped", "star_tensor_limited",
     "star_centered_tensor_limited", "star_bias_corrected"],
)
def test_recipes_swap_only_the_preconditioner(recipe):
    star, opt = lofw.build("star"), lofw.build(recipe)
    assert lofw.count_meta_parameters(opt) == lofw.count_meta_parameters(star) == 203
    assert type(opt.preconditioner) is not type(star.preconditioner)
    same = eqx.tree_at(lambda o: o.preconditioner, opt, star.preconditioner)
    assert eqx.tree_equal(same, star)


def test_clipped_star_step_matches_a_hand_computation():
    """One step of star_centered_clipped = nominal + b3 * clip(centred x rsqrt(v), +-4|n|) * exp(b4 m_b)."""
    opt = lofw.build("star_centered_clipped")
    params = {"w": jax.random.normal(jax.random.PRNGKey(3), (6, 4))}
    grads = {"w": jax.random.normal(jax.random.PRNGKey(4), (6, 4))}
    updates, _ = opt.update(grads, opt.init(params), params)
    _, stats, feats = opt.features.update_leaf(grads["w"], params["w"], opt.features.init_leaf(params["w"]),
                                               jnp.asarray(0, jnp.int32))
    heads = {k: np.asarray(v, np.float64) for k, v in opt.network(feats).items()}
    s = _np(stats)
    gain = 1.0 / np.sqrt(s["second_moment"] + EPS)
    n = s["momentum"].mean(axis=-1) * gain
    d = heads["direction"] - heads["direction"].mean()
    blackbox = 1e-3 * np.clip(d * gain, -4 * np.abs(n), 4 * np.abs(n)) * np.exp(1e-3 * heads["blackbox_magnitude"])
    nominal = 1e-3 * np.exp(1e-3 * heads["nominal_magnitude"]) * n
    np.testing.assert_allclose(np.asarray(updates["w"], np.float64), -(nominal + blackbox), rtol=1e-4, atol=1e-10)
