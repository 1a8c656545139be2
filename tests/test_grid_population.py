"""``lofw ablate --population N``: cells that share a program meta-train as one
population, each keeping its own folder, and end with the numbers of the grid
run cell by cell (to float rounding); cells that share a program with no
other cell run alone; bad options exit 2."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import yaml
from run_helpers import hold_lock

from lofw.cli.main import main
from lofw.grid import load_grid
from lofw.grid.files import cell_dir, run_dir
from lofw.grid.populations import plan_populations
from lofw.registry import load_registry
from lofw.runtime.disk import read_json, read_jsonl

# two variants (outer weight decay 0 and 0.5: one program) x two meta-seeds, and
# blackbox's two meta-seeds (another program); star_stable because star's PES estimate at
# initialisation is chaotic in theta (tests/test_population.py)
GRID = {
    "name": "pop",
    "base": {"recipe": "star_stable", "task": "digits_mlp", "horizon": 10, "meta_steps": 3, "checkpoint_every": 2,
             "estimator": {"name": "pes", "truncation": 5, "particles": 2}, "outer": {"lr": 1e-2}},
    "zip": [{"label": ["wd0", "wd05", "blackbox"], "outer.weight_decay": [0.0, 0.5, 0.0],
             "recipe": ["star_stable", "star_stable", "blackbox"]}],
    "seeds": [0, 1],
    "eval": {"horizons": [20], "seeds": 2, "baselines": ["adam"]},
}


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid") / "pop.yaml"
    path.write_text(yaml.safe_dump(GRID))
    return path


def _run(grid_file, out, *extra):
    code = main(["ablate", str(grid_file), "--out", str(out), "--no-progress", "--no-report", *extra])
    assert code == 0


@pytest.fixture(scope="module")
def alone_and_together(grid_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    _run(grid_file, root / "alone")
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        _run(grid_file, root / "together", "--population", "4")
    # the populations did form: star_stable's four cells, blackbox's two
    assert "population of 4 cells" in said.getvalue() and "population of 2 cells" in said.getvalue()
    return load_grid(grid_file), root / "alone", root / "together"


def test_plan_groups_cells_of_one_program_in_grid_order(grid_file):
    registry = load_registry()
    cells = load_grid(grid_file).cells
    groups = plan_populations(cells, 4, registry)
    star_stable = {c.id for c in cells if c.config.recipe == "star_stable"}
    assert sorted(len(g) for g in groups) == [2, 4]  # star_stable's 4 cells, blackbox's 2 seeds
    assert {c.id for g in groups if len(g) == 4 for c in g} == star_stable
    assert {c.config.recipe for g in groups if len(g) == 2 for c in g} == {"blackbox"}
    assert sorted(len(g) for g in plan_populations(cells, 3, registry)) == [1, 2, 3]  # the size bounds a group
    assert all(len(g) == 1 for g in plan_populations(cells, 1, registry))


def test_population_grid_equals_the_grid_cell_by_cell(alone_and_together):
    loaded, alone, together = alone_and_together
    for cell in loaded.cells:
        a = read_jsonl(run_dir(alone, cell.id) / "metrics.jsonl")
        b = read_jsonl(run_dir(together, cell.id) / "metrics.jsonl")
        assert [x["step"] for x in a] == [x["step"] for x in b] == [1, 2, 3]
        for x, y in zip(a, b):
            for key in ("meta_loss", "grad_norm", "theta_norm"):
                # (measured: blackbox's meta-gradient norm differs by 3e-4 relative after 3 meta-steps)
                np.testing.assert_allclose(y[key], x[key], rtol=2e-3, err_msg=f"{cell.id} {key}")
        assert read_json(cell_dir(together, cell.id) / "cell_status.json")["status"] == "done"
        ea = json.loads((cell_dir(alone, cell.id) / "eval" / "h20" / "summary.json").read_text())
        eb = json.loads((cell_dir(together, cell.id) / "eval" / "h20" / "summary.json").read_text())
        np.testing.assert_allclose(eb["optimizers"]["learned"]["mean_loss"], ea["optimizers"]["learned"]["mean_loss"],
                                   rtol=1e-3)
    # a finished population grid is finished: a rerun runs nothing
    _run(loaded.source, together, "--population", "4")
    assert all(read_json(cell_dir(together, c.id) / "cell_status.json")["attempts"] == 1 for c in loaded.cells)


def test_population_in_a_worker_process(grid_file, tmp_path):
    out = tmp_path / "jobs"
    _run(grid_file, out, "--population", "2", "--jobs", "2")
    cells = load_grid(grid_file).cells
    assert all(read_json(cell_dir(out, c.id) / "cell_status.json")["status"] == "done" for c in cells)
    first = [g for g in plan_populations(cells, 2, load_registry()) if len(g) == 2][0]
    log = (cell_dir(out, first[0].id) / "log.txt").read_text()
    assert all(f"cell {c.id}: done" in log for c in first)  # one worker ran both members


@pytest.mark.parametrize("extra, message", [
    (["--population", "0"], "--population: must be at least 1"),
    (["--cell", "nosuch"], "--cell: no cell 'nosuch'"),
])
def test_bad_population_options_exit_2(grid_file, tmp_path, capsys, extra, message):
    out = tmp_path / "bad"
    assert main(["ablate", str(grid_file), "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_cell_given_twice_exits_2(grid_file, tmp_path, capsys):
    cid = load_grid(grid_file).cells[0].id
    assert main(["ablate", str(grid_file), "--out", str(tmp_path / "o"), "--cell", f"{cid},{cid}"]) == 2
    assert "given twice" in capsys.readouterr().err


def test_a_member_held_by_another_process_is_skipped_and_the_others_run(grid_file, tmp_path, capsys):
    cells = [c for c in load_grid(grid_file).cells
             if c.config.recipe == "star_stable" and c.config.outer.weight_decay == 0.0]  # seeds 0 and 1
    out = tmp_path / "held"
    holder = hold_lock(cell_dir(out, cells[1].id))
    try:
        code = main(["ablate", str(grid_file), "--out", str(out), "--no-progress", "--no-report",
                     "--cell", f"{cells[0].id},{cells[1].id}", "--population", "2"])
        printed = capsys.readouterr().out
    finally:
        holder.kill()
        holder.wait()
    assert code == 0
    assert f"cell {cells[0].id}: done" in printed and f"cell {cells[1].id}: held by process" in printed
    assert read_json(cell_dir(out, cells[1].id) / "cell_status.json")["status"] == "pending"
    assert not (run_dir(out, cells[1].id) / "metrics.jsonl").exists()
