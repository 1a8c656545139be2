"""`lofw nqm stability` and `lofw nqm figures`."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import lofw.nqm as nqm
from lofw.cli.main import main

H = nqm.PAPER_HESSIAN
LAM_MAX = float(np.linalg.eigvalsh(H)[-1])


def run_json(capsys, *args):
    assert main(["nqm", "stability", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_stability_json(capsys):
    r = run_json(capsys, "--alpha", "0.3", "--P", "[[0.1,0],[0,0.2]]")
    P = np.diag([0.1, 0.2])
    assert r["spectral_radius"] == pytest.approx(nqm.spectral_radius(nqm.update_matrix(H, P, 0.3)))
    assert r["stable"] is True and r["verdict"] == "stable"
    np.testing.assert_allclose(r["update_matrix"], nqm.update_matrix(H, P, 0.3))
    t1 = r["bounds"]["theorem1"]
    assert (t1["lower"], t1["upper"]) == pytest.approx((-0.3, 2 / LAM_MAX - 0.3))
    assert t1["holds"] and t1["guaranteed"]
    assert r["eigenvalues_P"] == [[0.1, 0.0], [0.2, 0.0]] and r["P_symmetric"]


def test_stability_violated_and_unstable(capsys):
    v = np.linalg.eigh(H)[1][:, -1]
    P = (2 / LAM_MAX + 0.2) * np.outer(v, v)  # above the upper bound along H's top eigenvector
    r = run_json(capsys, "--P", json.dumps(P.tolist()))
    assert not r["bounds"]["theorem1"]["holds"]
    assert r["spectral_radius"] > 1 and r["verdict"] == "unstable"


def test_stability_defaults_and_marginal(capsys):
    r = run_json(capsys)  # P = 0, alpha = 0: A = I
    assert r["spectral_radius"] == 1.0 and r["verdict"] == "marginally stable" and not r["stable"]


def test_stability_preconditioned_uses_lemma2(capsys):
    r = run_json(capsys, "--alpha", "0.2", "--P", "[[0.1,0],[0,0.2]]", "--precondition")
    assert set(r["bounds"]) == {"lemma2"}
    assert r["bounds"]["lemma2"]["upper"] == pytest.approx(2 / np.sqrt(LAM_MAX) - 0.2)
    np.testing.assert_allclose(r["update_matrix"], nqm.update_matrix(H, np.diag([0.1, 0.2]), 0.2, precondition=True))


def test_stability_lemma3(capsys):
    r = run_json(capsys, "--alpha", "0.3", "--P", "[[0.1,0],[0,0.2]]", "--d-max", "[1, 2]")
    l3 = r["bounds"]["lemma3"]
    assert l3["applicable"] and l3["holds"]
    assert (l3["lower"], l3["upper"]) == pytest.approx(nqm.lemma3_bounds(H, 0.3, 2.0))
    r = run_json(capsys, "--P", "[[0.1,0],[0,0.2]]", "--d-max", "2")  # alpha = 0 is outside the lemma
    assert not r["bounds"]["lemma3"]["applicable"] and "0 < alpha" in r["bounds"]["lemma3"]["reason"]


def test_stability_text(capsys):
    assert main(["nqm", "stability", "--P", "[[0, 5], [0, 0.1]]"]) == 0
    out = capsys.readouterr().out
    assert "rho(A) = 2.0286" in out and "(unstable)" in out
    assert "Theorem 1 (eqs. 9-10)" in out and "satisfied" in out
    assert "proven for symmetric P only" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--P", "[[0.1,0],[0,0.2]"], "--P: not valid JSON"),
        (["--P", "0.1"], "--P: expected a JSON matrix"),
        (["--P", "[[1,2],[3]]"], "rows have different lengths"),
        (["--P", "[[1,2,3],[4,5,6]]"], "must be square"),
        (["--P", "[[1,0,0],[0,1,0],[0,0,1]]"], "must be 2x2 to match H"),
        (["--P", '[[1,"a"],[0,0]]'], "entries must be numbers"),
        (["--P", "[[NaN,0],[0,0]]"], "finite"),
        (["--alpha", "-0.1"], "--alpha: must be a finite number >= 0"),
        (["--H", "[[1,2],[2,1]]"], "--H: must be positive definite"),
        (["--H", "[[1,2],[0,1]]"], "--H: must be symmetric"),
        (["--d-max", "[1, 0]"], "--d-max: every d_max_i must be a positive"),
        (["--d-max", "x"], "--d-max: not valid JSON"),
    ],
)
def test_stability_bad_input_exits_2_with_a_message(capsys, args, message):
    assert main(["nqm", "stability", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lofw nqm: error: ") and message in err and "Traceback" not in err


def test_stability_bad_P_in_a_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "lofw.cli.main", "nqm", "stability", "--P", "[[1, 2]"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "lofw nqm: error: --P: not valid JSON" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_figures_command_writes_every_panel(tmp_path, capsys):
    out = tmp_path / "figs"
    args = ["nqm", "figures", "--out", str(out), "--variance-seeds", "4", "--variance-alphas", "3",
            "--meta-iterations", "30"]
    assert main(args) == 0
    printed = capsys.readouterr().out.split()
    for stem in ("nqm_fig1_eigenvalues", "nqm_fig2a_gradient_variance", "nqm_fig2b_eigenvalues",
                 "nqm_fig2c_meta_loss"):
        png = out / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in printed
    fig1 = json.loads((out / "nqm_fig1_eigenvalues.json").read_text())
    panels = {p["name"]: p for p in fig1["panels"]}
    assert panels["nominal"]["radius_before"] > 1  # P is unstable on its own
    assert panels["combined"]["radius_after"] < 1  # all interventions together stabilise it
    with open(out / "nqm_fig2a_gradient_variance.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * len(nqm.PAPER_HORIZONS) and float(rows[-1]["alpha"]) == pytest.approx(2 / LAM_MAX)
    with open(out / "nqm_fig2c_meta_loss.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["alpha_fraction"] for r in rows} == {"0", "0.1", "0.2", "0.3", "0.4"}
    summary = json.loads((out / "nqm_figures.json").read_text())
    assert summary["sizes"]["meta_iterations"] == 30 and summary["figure2bc"]["T"] == 50


def test_figures_bad_sizes_exit_2(tmp_path, capsys):
    assert main(["nqm", "figures", "--out", str(tmp_path), "--meta-iterations", "0"]) == 2
    assert "--meta-iterations: must be at least 1" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["nqm", "figures", "--out", str(blocker)]) == 2
    assert "--out" in capsys.readouterr().err


def test_figures_full_sizes_and_the_literal_alpha_convention(tmp_path):
    out = tmp_path / "figs"
    # --full takes Appendix B.1's sizes; the override keeps this to 30 meta-iterations of the one study run
    assert main(["nqm", "figures", "--out", str(out), "--full", "--alpha-convention", "literal",
                 "--meta-iterations", "30", "--only", "figure2bc"]) == 0
    summary = json.loads((out / "nqm_figures.json").read_text())
    assert summary["full"] is True and summary["sizes"]["variance_seeds"] == 500
    assert summary["sizes"]["variance_alphas"] == 50 and summary["sizes"]["meta_iterations"] == 30
    bc = summary["figure2bc"]
    assert bc["convention"] == "literal"
    # literally alpha = v * lambda_max / 2 (the default reads v as a fraction of the bound 2 / lambda_max)
    np.testing.assert_allclose(bc["alphas"], np.asarray(bc["alpha_fractions"]) * LAM_MAX / 2, rtol=1e-6)
