"""The grid report on a small synthetic run folder: files, table rows and
numbers (checked against direct numpy computations), stability sentences."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from lofw.cli.main import main
from lofw.grid import load_grid
from lofw.grid.files import cell_dir, eval_dir
from lofw.grid.report import EMA, ema, mean_se, write_report
from lofw.grid.runner import prepare
from lofw.runtime.disk import write_json

H_META, H_EVAL, SEEDS = 20, 100, 3


def _curve(kind: str, seed: int) -> np.ndarray:
    t = np.arange(H_EVAL, dtype=np.float64)
    base = 2.0 * np.exp(-t / 30.0) + 0.1 + 0.01 * seed
    if kind == "rises":       # stable until the horizon, then climbs (finite)
        return base + np.where(t > H_META, (t - H_META) / 5.0, 0.0)
    if kind == "flat":        # stable, but never learns
        return np.full_like(t, 2.3) + 0.001 * seed
    return base


def _fake_run(tmp_path):
    grid = {
        "name": "synthetic",
        "base": {"task": "digits_mlp", "horizon": H_META, "meta_steps": 10, "estimator": {"truncation": 10}},
        "axes": {"recipe": ["star", "blackbox", "hyperparam", "star_no_nominal"]},
        "seeds": [0, 1],
        "eval": {"horizons": [H_EVAL], "seeds": SEEDS, "baselines": ["adam"]},
    }
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(grid))
    loaded = load_grid(path)
    out = tmp_path / "out"
    prepare(loaded, out)
    for cell in loaded.cells:
        recipe, seed = cell.overrides["recipe"], cell.overrides["seed"]
        folder = cell_dir(out, cell.id)
        lines = [{"step": s + 1, "meta_loss": 2.0 - 0.1 * s - 0.05 * seed} for s in range(10)]
        (folder / "run").mkdir()
        (folder / "run" / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        kind = {"star": "stable", "blackbox": "diverges", "hyperparam": "rises", "star_no_nominal": "flat"}[recipe]
        curves = np.stack([_curve(kind, 10 * seed + i) for i in range(SEEDS)])
        diverged = [False] * SEEDS
        if kind == "diverges" and seed == 1:   # one of the six blackbox runs blows up
            curves[0, 60:] = np.nan
            diverged[0] = True
        opt = {"learned": {"diverged": diverged, "n_diverged": sum(diverged)}}
        arrays = {"learned": curves.astype(np.float32)}
        if cell.index == 0:
            arrays["adam"] = np.stack([_curve("stable", 100 + i) for i in range(SEEDS)]).astype(np.float32)
            opt["adam"] = {"diverged": [False] * SEEDS, "n_diverged": 0}
        target = eval_dir(out, cell.id, H_EVAL)
        target.mkdir(parents=True)
        np.savez(target / "curves.npz", **arrays)
        write_json(target / "summary.json", {"task": "digits_mlp", "steps": H_EVAL, "optimizers": opt,
                                             "chance_loss": float(np.log(10.0))})
        write_json(folder / "cell_status.json", {"status": "diverged" if any(diverged) else "done"})
    return loaded, out


def test_ema_matches_closed_form():
    x = np.concatenate([[0.0], np.ones(50)])
    s = ema(x)
    np.testing.assert_allclose(s, np.concatenate([[0.0], 1 - EMA ** np.arange(1, 51)]), rtol=1e-12)
    np.testing.assert_allclose(ema(np.full((2, 7), 3.5)), 3.5)
    assert np.isnan(ema(np.array([1.0, np.nan, 1.0]))[2])


def test_mean_se_drops_non_finite():
    m, se, n = mean_se([1.0, 2.0, 3.0, np.nan, np.inf])
    assert (m, n) == (2.0, 3)
    assert se == pytest.approx(1.0 / np.sqrt(3))


def test_report_files_rows_numbers_and_stability(tmp_path, capsys):
    loaded, out = _fake_run(tmp_path)
    assert main(["report", str(out)]) == 0
    folder = out / "report"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["inner_training_h100.png", "meta_training.png", "summary.csv", "summary.md"]
    for png in ("meta_training.png", "inner_training_h100.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((folder / "summary.csv").open()))
    assert [(r["task"], r["optimizer"]) for r in rows] == [
        ("digits_mlp", "star"), ("digits_mlp", "blackbox"), ("digits_mlp", "hyperparam"),
        ("digits_mlp", "star_no_nominal"), ("digits_mlp", "adam")]
    by = {r["optimizer"]: r for r in rows}
    assert [by[k]["runs"] for k in ("star", "blackbox", "adam")] == ["6", "6", "3"]
    assert [by[k]["diverged"] for k in ("star", "blackbox", "adam")] == ["0", "1", "0"]
    # Independent computation for star: runs are seeds 10*s + i, s in {0, 1}, i < 3.
    runs = np.stack([_curve("stable", 10 * s + i) for s in (0, 1) for i in range(SEEDS)]).astype(np.float32)
    runs = runs.astype(np.float64)
    at_end = runs[:, H_EVAL - 5:].mean(axis=1)          # last 5% of 100 steps
    assert float(by["star"]["loss_at_100_mean"]) == pytest.approx(at_end.mean(), rel=1e-5)
    assert float(by["star"]["loss_at_100_se"]) == pytest.approx(at_end.std(ddof=1) / np.sqrt(6), rel=1e-4)
    over = runs[:, :H_META].mean(axis=1)
    assert float(by["star"]["mean_loss_over_horizon_mean"]) == pytest.approx(over.mean(), rel=1e-5)
    at_h = runs[:, H_META - 1]                           # 5% of 20 steps: the last one
    assert float(by["star"]["loss_at_horizon_mean"]) == pytest.approx(at_h.mean(), rel=1e-5)
    finals = [np.mean([2.0 - 0.1 * 9 - 0.05 * seed]) for seed in (0, 1)]
    assert float(by["star"]["final_meta_loss_mean"]) == pytest.approx(np.mean(finals))
    # The diverged blackbox run is left out of the means.
    kept = np.stack([_curve("diverges", 10 * s + i).astype(np.float32).astype(np.float64)
                     for s in (0, 1) for i in range(SEEDS) if (s, i) != (1, 0)])
    assert float(by["blackbox"]["loss_at_100_mean"]) == pytest.approx(kept[:, -5:].mean(), rel=1e-5)
    # Stability columns, from the EMA directly: the hyperparam runs climb after the horizon.
    hyper = np.stack([_curve("rises", 10 * s + i).astype(np.float32).astype(np.float64) for s in (0, 1) for i in range(SEEDS)])
    smooth = ema(hyper)
    worst = (smooth[:, H_META - 1:].max(axis=1) / smooth[:, H_META - 1]).max()
    assert worst > 2 and float(by["hyperparam"]["worst_ratio_mean"]) == pytest.approx(worst, rel=1e-5)
    assert (by["hyperparam"]["stable_runs"], by["star"]["stable_runs"], by["blackbox"]["stable_runs"]) == ("0", "6", "5")
    assert by["blackbox"]["nonfinite_runs"] == "1"
    # flat runs at 2.3 + 0.001 seed: seeds 10-12 sit above ln 10 at all 81 steps from the horizon on
    assert float(by["star_no_nominal"]["steps_above_chance_mean"]) == pytest.approx(3 * (H_EVAL - H_META + 1) / 6)
    adam = np.stack([_curve("stable", 100 + i).astype(np.float32).astype(np.float64) for i in range(SEEDS)])
    ratio = over.mean() / adam[:, :H_META].mean(axis=1).mean()
    assert float(by["star"]["vs_tuned_Adam_mean"]) == pytest.approx(ratio, rel=1e-5)
    md = (folder / "summary.md").read_text()
    assert "star on digits_mlp: stayed stable past the horizon" in md
    assert f"Inside the horizon: faster than adam: mean loss over the first {H_META} steps" in md
    assert "## Per meta-training seed" in md and md.count("\n| digits_mlp | hyperparam | ") == 3
    assert "**blackbox on digits_mlp: did NOT stay stable past the horizon**: 1 of 6 runs diverged" in md
    assert "**hyperparam on digits_mlp: did NOT stay stable past the horizon**: the loss rose" in md
    assert "star_no_nominal on digits_mlp: stayed stable past the horizon" in md
    assert "But it did not train: the loss started at 2.3" in md
    assert "star on digits_mlp: stayed stable past the horizon: loss" in md
    assert md.count("did not train") == 1
    assert md.count("\n| digits_mlp |") == 5 + 8   # the summary rows, then a row per variant and meta-seed
    # every recipe's meta-loss is the same line here, so none ends above the hyperparam control's
    assert "## Collapsed meta-trainings" in md and "| star | 0/2 | 1.1 (seed 0), 1.05 (seed 1) | 1.1, 1.05 |" in md
    assert "stayed stable" in capsys.readouterr().out


def test_report_on_partial_run_says_so(tmp_path):
    loaded, out = _fake_run(tmp_path)
    write_json(cell_dir(out, loaded.cells[-1].id) / "cell_status.json", {"status": "running"})
    md = (write_report(out) / "summary.md").read_text()
    assert "1 cell(s) not finished" in md


def test_report_marks_a_cell_whose_meta_training_ended_not_learning(tmp_path):
    from lofw.meta.health import DEAD_STEPS

    loaded, out = _fake_run(tmp_path)
    dead = loaded.cells[0]
    lines = [{"step": s + 1, "meta_loss": 3.45, "grad_norm": 0.0, "dead_steps": s + 1} for s in range(DEAD_STEPS)]
    (cell_dir(out, dead.id) / "run" / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    md = (write_report(out) / "summary.md").read_text()
    assert "1 cell(s) NOT LEARNING" in md and dead.id in md.split("NOT LEARNING")[1].splitlines()[0]
    assert md.count(f"NOT LEARNING ({DEAD_STEPS} dead steps)") == 1  # its row of the per-seed table


def test_report_on_a_folder_that_is_no_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a grid run folder" in capsys.readouterr().err
