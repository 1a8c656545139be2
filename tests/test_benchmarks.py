"""The benchmark scripts run and report what they promise (tiny sizes; no timing is asserted)."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_overhead_reports_every_optimizer_against_adam(capsys):
    result = load("step_overhead").main(["blackbox", "--steps", "2", "--repeats", "1", "--json",
                                         "--xla", "xla_cpu_enable_fast_math=true"])
    assert result["xla_options"] == {"xla_cpu_enable_fast_math": True}
    rows = result["optimizers"]
    assert list(rows) == ["adam", "blackbox"] and rows["adam"]["ratio"] == 1.0
    assert rows["blackbox"]["ms_per_step"] > 0 and rows["blackbox"]["compile_s"] > 0
    assert '"optimizers"' in capsys.readouterr().out


@pytest.mark.parametrize("recipe", ["adam", "hyperparam"])
def test_step_profile_lists_kernels_with_their_ops(recipe, capsys):
    # every kernel listed and described, so the assertions do not depend on their timing order
    args = [recipe, "--shape", "64x32", "--shape", "5", "--steps", "2", "--top", "1000", "--ops", "1000"]
    result = load("step_profile").main(args)
    assert result["launched_per_step"] > 0 and result["kernels_us_per_step"]
    out = capsys.readouterr().out
    assert out.startswith(f"{recipe} on 64x32 5:")
    # kernels over the matrix are named with their output shape and ops
    described = [line for line in out.splitlines()[1:] if "f32[64,32]" in line]
    assert described and all(line.split()[0].replace(".", "").isdigit() for line in out.splitlines()[1:])


def test_grid_throughput_times_every_phase_alone_and_in_populations(tmp_path, capsys):
    import yaml

    grid = tmp_path / "tiny.yaml"
    grid.write_text(yaml.safe_dump({
        "name": "tiny", "seeds": [0, 1],
        "base": {"recipe": "hyperparam", "task": "digits_mlp", "horizon": 10, "meta_steps": 1,
                 "estimator": {"name": "pes", "truncation": 5, "particles": 2}},
        "eval": {"horizons": [10], "seeds": 2, "baselines": ["adam"]},
    }))
    results = load("grid_throughput").main(["--grid", str(grid), "--meta-steps", "2", "--eval-steps", "10"])
    for mode in ("alone", "population"):
        assert list(results[mode]) == ["compile", "meta-train", "evaluate", "report"]
        assert all(t["wall_s"] > 0 and t["cpu_s"] >= 0 for t in results[mode].values())
    assert "total" in capsys.readouterr().out


def test_device_check_runs_every_part_and_writes_its_json(tmp_path, capsys):
    out = tmp_path / "device_check.json"
    result = load("device_check").main(["--quick", "--recipes", "hyperparam", "--meta-recipe", "hyperparam",
                                        "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    for part in ("harness", "task"):
        assert list(result[part]) == ["8", "16"]
        for rows in result[part].values():
            assert list(rows) == ["adam", "hyperparam"] and rows["adam"]["ratio"] == 1.0
            assert rows["hyperparam"]["ratio"] == pytest.approx(rows["hyperparam"]["ms_per_step"] / rows["adam"]["ms_per_step"])
    meta = result["meta_step"]
    assert list(meta) == ["alone", "population_2"]
    assert meta["population_2"]["s_per_member"] == pytest.approx(meta["population_2"]["meta_step_s"] / 2)
    assert meta["population_2"]["per_member_vs_alone"] == pytest.approx(
        meta["population_2"]["s_per_member"] / meta["alone"]["meta_step_s"])
    assert "meta-step population_2" in capsys.readouterr().out
