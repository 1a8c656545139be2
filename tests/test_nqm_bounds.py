"""The update map (eqs. 6, 12) and the stability bounds of Theorem 1, Lemma 2 and Lemma 3.

Each result is checked as a sufficient condition over many random symmetric P
(eigenvalues drawn inside the bounds, including exactly on them), and with a
constructed violation whose spectral radius provably exceeds 1.
"""

import numpy as np
import pytest

import lofw.nqm as nqm

TOL = 1e-9  # float64 slack on rho(A) <= 1 (eigenvalues exactly on the bounds give rho = 1)


def random_spd(rng, n):
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (Q * rng.uniform(0.05, 3.0, size=n)) @ Q.T


def random_symmetric(rng, n, lower, upper):
    """Symmetric P with eigenvalues in [lower, upper], one of them on each bound half the time."""
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = rng.uniform(lower, upper, size=n)
    if rng.random() < 0.5:
        lam[0], lam[-1] = lower, upper
    return (Q * lam) @ Q.T


def instances(seed, count=400):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(2, 7))
        H = random_spd(rng, n)
        lam_max = np.linalg.eigvalsh(H)[-1]
        alpha = rng.uniform(0.0, 1.2) * 2.0 / lam_max * (rng.random() < 0.9)  # 10% at alpha = 0
        yield rng, n, H, alpha


def top_eigenvector(H):
    lam, V = np.linalg.eigh(H)
    return lam[-1], V[:, -1]


def test_update_matrix_matches_the_equations():
    H, P, alpha = nqm.PAPER_HESSIAN, np.array([[0.1, 0.3], [-0.2, 0.2]]), 0.3
    np.testing.assert_allclose(nqm.update_matrix(H, P, alpha), np.eye(2) - (alpha * np.eye(2) + P) @ H)
    lam, V = np.linalg.eigh(H)
    inv_root = V @ np.diag(lam**-0.5) @ V.T
    np.testing.assert_allclose(
        nqm.update_matrix(H, P, alpha, precondition=True), np.eye(2) - inv_root @ (alpha * np.eye(2) + P) @ H
    )
    np.testing.assert_allclose(inv_root @ inv_root @ H, np.eye(2), atol=1e-12)


def test_spectral_radius():
    assert nqm.spectral_radius(np.diag([0.5, -0.9])) == pytest.approx(0.9)
    rotation = 1.1 * np.array([[np.cos(1.0), -np.sin(1.0)], [np.sin(1.0), np.cos(1.0)]])  # eigenvalues 1.1 e^(+-i)
    assert nqm.spectral_radius(rotation) == pytest.approx(1.1)
    assert nqm.spectral_radius(nqm.update_matrix(nqm.PAPER_HESSIAN, np.zeros((2, 2)), 0.0)) == 1.0


def test_bound_values_on_the_paper_hessian():
    lam_max = np.linalg.eigvalsh(nqm.PAPER_HESSIAN)[-1]
    assert lam_max == pytest.approx(1.4707258, rel=1e-6)
    assert nqm.theorem1_bounds(nqm.PAPER_HESSIAN, 0.3) == pytest.approx((-0.3, 2 / lam_max - 0.3))
    assert nqm.lemma2_bounds(nqm.PAPER_HESSIAN, 0.3) == pytest.approx((-0.3, 2 / np.sqrt(lam_max) - 0.3))
    assert nqm.lemma3_bounds(nqm.PAPER_HESSIAN, 0.3, [1.0, 2.0]) == pytest.approx((-0.15, (2 / lam_max - 0.3) / 2))
    assert nqm.lemma3_bounds(nqm.PAPER_HESSIAN, 0.3, 2.0) == nqm.lemma3_bounds(nqm.PAPER_HESSIAN, 0.3, [2.0, 0.5])
    assert nqm.lemma3_bounds(nqm.PAPER_HESSIAN, 0.3, 1.0) == nqm.theorem1_bounds(nqm.PAPER_HESSIAN, 0.3)
    with pytest.raises(ValueError, match="d_max must be positive"):
        nqm.lemma3_bounds(nqm.PAPER_HESSIAN, 0.3, [1.0, 0.0])


def test_theorem1_bounds_imply_stability_for_random_symmetric_P():
    for rng, n, H, alpha in instances(seed=1):
        lower, upper = nqm.theorem1_bounds(H, alpha)
        P = random_symmetric(rng, n, lower, upper)
        assert nqm.check_bounds(P, (lower, upper), "theorem1").guaranteed
        assert nqm.spectral_radius(nqm.update_matrix(H, P, alpha)) <= 1 + TOL


def test_theorem1_violations_make_the_radius_exceed_one():
    for rng, n, H, alpha in instances(seed=2, count=100):
        lower, upper = nqm.theorem1_bounds(H, alpha)
        lam_max, v = top_eigenvector(H)
        delta = rng.uniform(0.01, 0.5)
        # Upper bound violated along H's top eigenvector: A v = (-1 - delta lam_max) v.
        P = (upper + delta) * np.outer(v, v)
        assert not nqm.check_bounds(P, (lower, upper), "theorem1").holds
        assert nqm.spectral_radius(nqm.update_matrix(H, P, alpha)) == pytest.approx(1 + delta * lam_max)
        # Lower bound violated: along any eigenvector u of H, A u = (1 + delta lam_u) u.
        P = (lower - delta) * np.outer(v, v)
        assert not nqm.check_bounds(P, (lower, upper), "theorem1").holds
        assert nqm.spectral_radius(nqm.update_matrix(H, P, alpha)) > 1


def test_theorem1_worked_example():
    H, P = nqm.PAPER_HESSIAN, np.diag([0.1, 0.2])
    assert nqm.check_bounds(P, nqm.theorem1_bounds(H, 0.3), "theorem1").guaranteed
    assert nqm.spectral_radius(nqm.update_matrix(H, P, 0.3)) < 1
    P = np.diag([0.2, 1.1])  # above 2 / lambda_max - 0.3 = 1.0599
    assert not nqm.check_bounds(P, nqm.theorem1_bounds(H, 0.3), "theorem1").holds


def test_theorem1_needs_symmetric_P():
    """The theorem says "diagonalizable with real eigenvalues", but its proof needs alpha I + P
    symmetric PSD: this P has eigenvalues 0 and 0.1, inside the bounds, and rho(A) ~ 2.03."""
    P = np.array([[0.0, 5.0], [0.0, 0.1]])
    check = nqm.check_bounds(P, nqm.theorem1_bounds(nqm.PAPER_HESSIAN, 0.0), "theorem1")
    assert check.holds and check.real_eigenvalues and not check.symmetric and not check.guaranteed
    assert nqm.spectral_radius(nqm.update_matrix(nqm.PAPER_HESSIAN, P, 0.0)) == pytest.approx(2.0286, abs=1e-4)


def test_lemma2_bounds_imply_stability_for_random_symmetric_P():
    for rng, n, H, alpha in instances(seed=3):
        lower, upper = nqm.lemma2_bounds(H, alpha)
        if upper < lower:  # alpha beyond 2 / sqrt(lambda_max): no P satisfies the lemma
            continue
        P = random_symmetric(rng, n, lower, upper)
        assert nqm.spectral_radius(nqm.update_matrix(H, P, alpha, precondition=True)) <= 1 + TOL


def test_lemma2_violations_make_the_radius_exceed_one():
    for rng, n, H, alpha in instances(seed=4, count=100):
        lower, upper = nqm.lemma2_bounds(H, alpha)
        lam_max, v = top_eigenvector(H)
        delta = rng.uniform(0.01, 0.5)
        # H^-1/2 (alpha + c) H v = (alpha + c) sqrt(lam_max) v = (2 + delta sqrt(lam_max)) v.
        P = (upper + delta) * np.outer(v, v)
        radius = nqm.spectral_radius(nqm.update_matrix(H, P, alpha, precondition=True))
        assert radius == pytest.approx(1 + delta * np.sqrt(lam_max))
        P = (lower - delta) * np.outer(v, v)
        assert nqm.spectral_radius(nqm.update_matrix(H, P, alpha, precondition=True)) > 1


def test_lemma2_is_looser_than_theorem1_when_lambda_max_exceeds_one():
    H = nqm.PAPER_HESSIAN  # lambda_max ~ 1.47
    assert nqm.lemma2_bounds(H, 0.2)[1] > nqm.theorem1_bounds(H, 0.2)[1]
    lower, upper = nqm.lemma2_bounds(H, 0.2)
    P = np.diag([upper, upper])  # outside Theorem 1's bound, stable with the preconditioner
    assert nqm.spectral_radius(nqm.update_matrix(H, P, 0.2)) > 1
    assert nqm.spectral_radius(nqm.update_matrix(H, P, 0.2, precondition=True)) <= 1 + TOL


def commuting_disturbance(rng, n, d_max, lower, upper):
    """A diagonal Delta (0 < d_i <= d_max_i) and a symmetric P~ commuting with it: Delta is constant
    on blocks of indices and P~ is block-diagonal over those blocks (the general commuting pair)."""
    cuts = np.sort(rng.choice(np.arange(1, n), size=int(rng.integers(0, n)), replace=False))
    blocks = np.split(np.arange(n), cuts)
    d = np.empty(n)
    Pt = np.zeros((n, n))
    for block in blocks:
        d[block] = rng.uniform(0.0, 1.0) * d_max[block].min() + 1e-6
        d[block] = np.minimum(d[block], d_max[block])
        if rng.random() < 0.3:
            d[block] = d_max[block].min()  # at the limit
        Pt[np.ix_(block, block)] = random_symmetric(rng, len(block), lower, upper)
    return np.diag(d), Pt


def test_lemma3_bounds_imply_robust_stability():
    for rng, n, H, alpha in instances(seed=5):
        lam_max = np.linalg.eigvalsh(H)[-1]
        alpha = min(max(alpha, 1e-3), 0.999 * 2 / lam_max)  # the lemma assumes 0 < alpha < 2 / lambda_max
        d_max = rng.uniform(0.2, 3.0, size=n)
        lower, upper = nqm.lemma3_bounds(H, alpha, d_max)
        for _ in range(3):
            Delta, Pt = commuting_disturbance(rng, n, d_max, lower, upper)
            np.testing.assert_allclose(Delta @ Pt, Pt @ Delta, atol=1e-12)
            assert nqm.check_bounds(Pt, (lower, upper), "lemma3").guaranteed
            assert nqm.spectral_radius(nqm.update_matrix(H, Delta @ Pt, alpha)) <= 1 + TOL


def test_lemma3_violations_make_the_radius_exceed_one_for_some_disturbance():
    for rng, n, H, alpha in instances(seed=6, count=100):
        lam_max, v = top_eigenvector(H)
        alpha = min(max(alpha, 1e-3), 0.999 * 2 / lam_max)
        D = rng.uniform(0.2, 3.0)
        lower, upper = nqm.lemma3_bounds(H, alpha, np.full(n, D))
        delta = rng.uniform(0.01, 0.5)
        Delta = D * np.eye(n)  # the worst admissible disturbance
        Pt = (upper + delta) * np.outer(v, v)
        assert nqm.spectral_radius(nqm.update_matrix(H, Delta @ Pt, alpha)) == pytest.approx(1 + D * delta * lam_max)
        Pt = (lower - delta) * np.outer(v, v)
        assert nqm.spectral_radius(nqm.update_matrix(H, Delta @ Pt, alpha)) > 1


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="positive definite"):
        nqm.update_matrix([[1.0, 2.0], [2.0, 1.0]], np.zeros((2, 2)), 0.1)
    with pytest.raises(ValueError, match="symmetric"):
        nqm.theorem1_bounds([[1.0, 0.5], [0.0, 1.0]], 0.1)
    with pytest.raises(ValueError, match="must be 2x2"):
        nqm.update_matrix(nqm.PAPER_HESSIAN, np.zeros((3, 3)), 0.1)
