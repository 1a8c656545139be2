"""The benchmark scripts run and report what they promise (tiny sizes; no timing is asserted)."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_overhead_reports_every_optimizer_against_adam(capsys):
    result = load("step_overhead").main(["blackbox", "--steps", "2", "--repeats", "1", "--json"])
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
