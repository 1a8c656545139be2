"""The closed-form expected meta-loss (eqs. 7-8) against the equations and Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lofw.nqm as nqm

H = nqm.PAPER_HESSIAN


def eq8_half(H, P, alpha, T, phi0, noise_cov):
    """Eq. 8 literally (fixed phi_0, Sigma_t from the sum of eq. 7), times the loss's 1/2."""
    n = H.shape[0]
    A = nqm.update_matrix(H, P, alpha)
    B = np.eye(n) - A
    total = 0.0
    for t in range(1, T + 1):
        At = np.linalg.matrix_power(A, t)
        sigma_t = sum(
            np.linalg.matrix_power(A, t - k - 1) @ B @ noise_cov @ (np.linalg.matrix_power(A, t - k - 1) @ B).T
            for k in range(t)
        )
        total += phi0 @ At.T @ H @ At @ phi0 + np.trace(H @ (sigma_t + noise_cov))
    return 0.5 * total / T


def test_expected_loss_is_half_of_eq8():
    rng = np.random.default_rng(0)
    P = np.array([[0.2, 0.1], [-0.1, 0.3]])
    phi0 = rng.normal(size=2)
    noise = np.array([[1.0, 0.3], [0.3, 0.5]])
    for T in (1, 2, 7):
        expected = eq8_half(H, P, 0.3, T, phi0, noise)
        # A fixed phi_0 is a zero-mean phi_0 whose second moment is phi_0 phi_0^T.
        assert nqm.expected_loss(H, P, 0.3, T, noise, np.outer(phi0, phi0)) == pytest.approx(expected, rel=1e-12)


def test_expected_losses_per_step_and_defaults():
    P = np.diag([0.1, 0.2])
    per_step = nqm.expected_losses(H, P, 0.3, 10)
    assert per_step.shape == (10,)
    assert nqm.expected_loss(H, P, 0.3, 10) == pytest.approx(per_step.mean())
    # Appendix B.1 defaults: Sigma_xi = I, phi_0 ~ N(0, 10 I).
    assert nqm.expected_loss(H, P, 0.3, 10) == nqm.expected_loss(H, P, 0.3, 10, np.eye(2), 10 * np.eye(2))
    # With A = I nothing moves: E[l_t] = 1/2 tr(H (C_0 + Sigma_xi)) = 1/2 * 11 * tr(H).
    assert nqm.expected_loss(H, np.zeros((2, 2)), 0.0, 5) == pytest.approx(5.5 * np.trace(H))


def test_expected_loss_of_unstable_dynamics_is_inf_not_nan():
    P = np.diag([3.0, 3.0])
    assert nqm.spectral_radius(nqm.update_matrix(H, P, 0.0)) > 1
    assert nqm.expected_loss(H, P, 0.0, 2000) == np.inf


@pytest.mark.parametrize(
    "P, alpha, precondition, noise_cov, init_cov",
    [
        (np.diag([0.1, 0.2]), 0.3, False, 1.0, 10.0),
        (np.array([[0.4, -0.3], [0.1, 0.6]]), 0.1, False, [[1.0, 0.3], [0.3, 0.5]], [[4.0, 1.0], [1.0, 2.0]]),
        (np.array([[0.2, 0.1], [0.1, -0.05]]), 0.2, True, 0.5, 10.0),
    ],
    ids=["paper", "correlated", "preconditioned"],
)
def test_expected_loss_matches_monte_carlo(P, alpha, precondition, noise_cov, init_cov):
    """Tolerance: 4 standard errors of the Monte Carlo mean (100,000 episodes) plus 1e-4
    relative for float32 rounding in the sampled episodes."""
    T, N = 20, 100_000
    problem = nqm.NoisyQuadratic(H, noise_cov, init_cov, precondition=precondition)
    keys = jax.random.split(jax.random.PRNGKey(0), N)
    losses = np.asarray(jax.jit(jax.vmap(lambda k: problem.loss(jnp.asarray(P, jnp.float32), alpha, k, T)))(keys))
    exact = nqm.expected_loss(H, P, alpha, T, noise_cov, init_cov, precondition=precondition)
    se = losses.std(ddof=1) / np.sqrt(N)
    assert abs(losses.mean() - exact) < 4 * se + 1e-4 * exact, (losses.mean(), exact, se)


def test_episode_losses_follow_eq6():
    """The sampled episode is the recursion phi_{t+1} = A phi_t + (I - A) xi_t, scored at t = 1..T."""
    problem = nqm.NoisyQuadratic()
    P = np.array([[0.2, 0.1], [-0.1, 0.3]])
    phi0, xi = problem.sample(jax.random.PRNGKey(3), 6)
    phi0, xi = np.asarray(phi0, np.float64), np.asarray(xi, np.float64)
    A = nqm.update_matrix(H, P, 0.3)
    phi, expected = phi0, []
    for t in range(6):
        phi = A @ phi + (np.eye(2) - A) @ xi[t]
        expected.append(0.5 * (phi - xi[t + 1]) @ H @ (phi - xi[t + 1]))
    got = problem.losses(jnp.asarray(P, jnp.float32), 0.3, jnp.asarray(phi0, jnp.float32), jnp.asarray(xi, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_bad_covariances_are_rejected():
    with pytest.raises(ValueError, match="sigma_xi"):
        nqm.expected_loss(H, np.zeros((2, 2)), 0.1, 3, sigma_xi=-1.0)
    with pytest.raises(ValueError, match="phi0_cov"):
        nqm.expected_loss(H, np.zeros((2, 2)), 0.1, 3, phi0_cov=[[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="T must be"):
        nqm.expected_loss(H, np.zeros((2, 2)), 0.1, 0)
