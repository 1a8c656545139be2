"""Figure 2a's meta-gradient variance and the antithetic-ES meta-training of Figures 2b/2c."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lofw.nqm as nqm
from lofw.nqm import studies
from lofw.nqm.variance import horizon_weights

H = nqm.PAPER_HESSIAN
LAM_MAX = float(np.linalg.eigvalsh(H)[-1])


def test_trace_covariance_is_eq_a32():
    g = np.random.default_rng(0).normal(size=(50, 2, 2))
    expected = np.trace(np.cov(g.reshape(50, -1).T, bias=True))
    assert float(nqm.trace_covariance(jnp.asarray(g))) == pytest.approx(expected, rel=1e-5)


def test_horizon_weights():
    W = horizon_weights([1, 3])
    np.testing.assert_allclose(W, [[1.0, 1 / 3], [0.0, 1 / 3], [0.0, 1 / 3]])


def test_forward_mode_variance_equals_jax_grad_per_horizon():
    """gradient_variance (one episode of the longest horizon, forward mode) equals jax.grad of
    each horizon's unrolled loss over the same episodes."""
    problem = nqm.NoisyQuadratic()
    key = jax.random.PRNGKey(7)
    horizons, n_seeds, alpha = (1, 4, 13), 64, 0.4
    got = nqm.gradient_variance(problem, [alpha], horizons, n_seeds, key)[0]
    keys = jax.random.split(key, n_seeds)
    t_max = max(horizons)

    @jax.jit
    def variances(keys):
        out = []
        for T in horizons:
            # The same episodes, truncated to T steps: phi_0 and xi_0 .. xi_T of the t_max episode.
            def loss(P, k, T=T):
                phi0, xi = problem.sample(k, t_max)
                return jnp.mean(problem.losses(P, alpha, phi0, xi[: T + 1]))

            out.append(nqm.trace_covariance(jax.vmap(jax.grad(loss), in_axes=(None, 0))(jnp.zeros((2, 2)), keys)))
        return jnp.stack(out)

    np.testing.assert_allclose(got, np.asarray(variances(keys)), rtol=1e-4)
    # meta_gradients is that jax.grad, for episodes of exactly T steps.
    g = jax.jit(lambda P, keys: nqm.meta_gradients(problem, P, alpha, 5, keys))(jnp.zeros((2, 2)), keys)
    assert g.shape == (n_seeds, 2, 2) and bool(jnp.all(jnp.isfinite(g)))


def test_variance_inside_the_bound_is_lower_than_at_alpha_zero():
    """The Figure 2a trend at T = 100 (P = 0): a nominal term inside Theorem 1's bound cuts the
    meta-gradient variance by orders of magnitude."""
    alphas = [0.0, 0.25 * 2 / LAM_MAX, 0.5 * 2 / LAM_MAX, 0.75 * 2 / LAM_MAX]
    var = nqm.gradient_variance(nqm.NoisyQuadratic(), alphas, horizons=[100], n_seeds=200)[:, 0]
    assert np.all(var[1:] < var[0] / 100), var


def test_es_gradient_is_unbiased():
    """The mean of antithetic ES estimates matches the exact gradient of the expected loss
    (central differences of the closed form) within 5 standard errors."""
    problem = nqm.NoisyQuadratic()
    alpha, T, sigma, n = 0.4, 10, 0.01, 20_000
    P = np.array([[0.1, -0.2], [0.05, 0.3]])

    def loss(P, k):
        return problem.loss(P, alpha, k, T)

    keys = jax.random.split(jax.random.PRNGKey(0), n)
    single = jax.jit(jax.vmap(lambda k: nqm.antithetic_es_gradient(loss, jnp.asarray(P, jnp.float32), k, sigma, 1)[0]))
    g = np.asarray(single(keys), np.float64).reshape(n, -1)
    exact = np.zeros(4)
    h = 1e-5
    for i in range(4):
        e = np.zeros(4)
        e[i] = h
        exact[i] = (nqm.expected_loss(H, P + e.reshape(2, 2), alpha, T)
                    - nqm.expected_loss(H, P - e.reshape(2, 2), alpha, T)) / (2 * h)
    se = g.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(g.mean(axis=0) - exact) < 5 * se), (g.mean(axis=0), exact, se)
    # Batched pairs average the single-pair estimates.
    batched, _ = nqm.antithetic_es_gradient(loss, jnp.asarray(P, jnp.float32), keys[0], sigma, 8)
    assert batched.shape == (2, 2)


def test_es_meta_training_lowers_the_expected_loss():
    problem = nqm.NoisyQuadratic()
    alpha = 0.3 * 2 / LAM_MAX
    Ps, meta_loss = jax.jit(
        lambda k: nqm.meta_train_es(problem, alpha, k, T=50, n_iterations=300, learning_rate=3e-3)
    )(jax.random.PRNGKey(0))
    assert Ps.shape == (301, 2, 2) and meta_loss.shape == (300,)
    np.testing.assert_array_equal(Ps[0], 0.0)
    before = nqm.expected_loss(H, np.zeros((2, 2)), alpha, 50)
    after = nqm.expected_loss(H, np.asarray(Ps[-1], np.float64), alpha, 50)
    assert after < before - 0.05, (before, after)
    assert after > studies.optimal_expected_loss(H, 50) - 1e-9


def test_alpha_conventions():
    bound = studies.alphas_from_fractions(H, [0.0, 0.5])
    np.testing.assert_allclose(bound, [0.0, 1 / LAM_MAX])
    np.testing.assert_allclose(studies.alphas_from_fractions(H, [0.4], "literal"), [0.2 * LAM_MAX])
    with pytest.raises(ValueError, match="convention"):
        studies.alphas_from_fractions(H, [0.1], "other")


def test_ema_smoothing():
    np.testing.assert_allclose(studies.ema([1.0, 0.0, 0.0], 0.95), [1.0, 0.95, 0.9025], rtol=1e-6)
    x = np.stack([np.ones(4), np.arange(4.0)])
    np.testing.assert_allclose(studies.ema(x, 0.5)[1], [0.0, 0.5, 1.25, 2.125])
