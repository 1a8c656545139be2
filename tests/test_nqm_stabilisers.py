"""The NQM analogues of the stabilisers (lofw.nqm.stabilisers) against closed forms."""

import json

import numpy as np
import pytest

from lofw import nqm
from lofw.cli.main import main
from lofw.nqm import stabilisers
from lofw.nqm.studies import random_problem


def test_limit_gain_on_a_scaled_identity_matches_the_closed_form():
    """P = p I, H = diag(h): A's eigenvalues are 1 - (alpha + min(p, k alpha)) h_i."""
    h = np.array([0.2, 0.7, 1.3])
    H, alpha = np.diag(h), 0.1
    for p, k in ((0.9, 4.0), (0.9, 1.0), (0.25, 4.0)):
        P = stabilisers.limit_gain(p * np.eye(3), alpha, k)
        expected = 1.0 - (alpha + min(p, k * alpha)) * h
        got = np.sort(nqm.eigenvalues(nqm.update_matrix(H, P, alpha)).real)
        np.testing.assert_allclose(got, np.sort(expected), rtol=1e-12)


def test_limit_gain_scales_to_the_bound_and_keeps_the_direction():
    rng = np.random.default_rng(0)
    P = rng.normal(size=(5, 5))
    out = stabilisers.limit_gain(P, alpha=0.1, k=2.0)
    np.testing.assert_allclose(np.linalg.svd(out, compute_uv=False)[0], 0.2, rtol=1e-12)
    np.testing.assert_allclose(out / np.linalg.norm(out), P / np.linalg.norm(P), rtol=1e-12)
    small = 0.01 * P / np.linalg.norm(P, 2)
    assert np.array_equal(stabilisers.limit_gain(small, 0.1, 2.0), small)
    with pytest.raises(ValueError, match="k > 0"):
        stabilisers.limit_gain(P, 0.1, 0.0)


def test_centring_on_a_scaled_identity_matches_the_closed_form():
    """P = p I, H = h I: C P H = p h C, so A has 1 - alpha h once (the all-ones
    direction, whose learned step centring removes) and 1 - (alpha + p) h n-1 times."""
    n, h, p, alpha = 4, 0.8, 0.5, 0.1
    A = nqm.update_matrix(h * np.eye(n), stabilisers.centered(p * np.eye(n)), alpha)
    got = np.sort(np.linalg.eigvals(A).real)
    expected = np.sort([1 - alpha * h] + [1 - (alpha + p) * h] * (n - 1))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(stabilisers.centered(p * np.eye(n)) @ np.ones(n), 0.0, atol=1e-15)


def test_radius_bound_and_symmetric_guarantee_hold_on_random_instances():
    rng = np.random.default_rng(1)
    for trial in range(50):
        H, P = random_problem(6, trial)
        lam = np.linalg.eigvalsh(H)[-1]
        alpha, k = rng.uniform(0.01, 1.0) / lam, rng.uniform(0.1, 6.0)
        A = nqm.update_matrix(H, stabilisers.limit_gain(P, alpha, k), alpha)
        assert nqm.spectral_radius(A) <= stabilisers.limited_radius_bound(H, alpha, k) + 1e-12
        S = stabilisers.limit_gain(0.5 * (P + P.T), alpha, min(k, 1.0))
        if stabilisers.limited_symmetric_guarantee(H, alpha, min(k, 1.0)):
            assert nqm.spectral_radius(nqm.update_matrix(H, S, alpha)) <= 1 + 1e-12
    assert stabilisers.limited_symmetric_guarantee(np.eye(2), 0.5, 1.0)
    assert not stabilisers.limited_symmetric_guarantee(np.eye(2), 0.5, 1.5)  # k > 1
    assert not stabilisers.limited_symmetric_guarantee(np.eye(2), 1.1, 1.0)  # (1 + k) alpha > 2


def test_stabiliser_study_moves_the_eigenvalues_inside():
    study = stabilisers.stabiliser_study()
    panels = {p.name: p for p in study["panels"]}
    assert panels["gain_limit"].radius_before > 1  # a small nominal term does not hold this P
    assert panels["gain_limit"].radius_after < 1
    assert panels["tight_gain_limit"].radius_after < 1
    assert panels["centring"].radius_after < panels["centring"].radius_before
    for p in study["panels"]:
        np.testing.assert_allclose(np.sort_complex(p.path[0]), np.sort_complex(p.before), atol=1e-9)
        np.testing.assert_allclose(np.sort_complex(p.path[-1]), np.sort_complex(p.after), atol=1e-9)


def test_stability_command_reports_the_stabilised_map(capsys):
    P = "[[0.5, 0.3], [-0.2, -0.4]]"
    assert main(["nqm", "stability", "--alpha", "0.05", "--P", P, "--limit", "4", "--center"]) == 0
    text = capsys.readouterr().out
    assert "gain limited to 4 alpha" in text and "centred" in text and "rho(A) <= " in text
    assert main(["nqm", "stability", "--alpha", "0.05", "--P", P, "--limit", "4", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)["stabilised"]
    expected = stabilisers.limit_gain(np.array(json.loads(P)), 0.05, 4.0)
    np.testing.assert_allclose(st["P"], expected)
    np.testing.assert_allclose(st["spectral_radius"], nqm.spectral_radius(nqm.update_matrix(nqm.PAPER_HESSIAN, expected, 0.05)))
    assert main(["nqm", "stability", "--P", P, "--limit", "4"]) == 2  # alpha = 0
    assert "--alpha > 0" in capsys.readouterr().err


def test_figures_only_the_stabiliser_view(tmp_path, capsys):
    assert main(["nqm", "figures", "--out", str(tmp_path), "--only", "figure1_stabiliser"]) == 0
    assert (tmp_path / "nqm_fig1_stabiliser.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((tmp_path / "nqm_fig1_stabiliser.json").read_text())
    assert [p["name"] for p in data["panels"]] == ["gain_limit", "tight_gain_limit", "centring", "centring_and_limit"]
    assert not (tmp_path / "nqm_fig1_eigenvalues.png").exists()
    assert main(["nqm", "figures", "--out", str(tmp_path), "--only", "figure9"]) == 2
    assert "--only" in capsys.readouterr().err
