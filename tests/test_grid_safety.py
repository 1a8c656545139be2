"""Grid folders survive damage and concurrency: a bad component argument creates nothing;
a second `lofw ablate` skips the cells another process holds; damaged grid and cell files
are repaired or stop with one message."""

from __future__ import annotations

import yaml
from run_helpers import hold_lock
from test_grid_runner import Fakes, _grid, fakes  # noqa: F401 - the fixture

from lofw.cli.main import main as cli
from lofw.grid import load_grid, run_grid
from lofw.grid.files import cell_dir, eval_dir
from lofw.runtime.disk import read_json


def test_ablate_with_a_bad_component_argument_creates_nothing(tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "base": {
        "task": "digits_mlp", "horizon": 20, "estimator": {"truncation": 10},
        "recipe": {"extends": "star", "network": {"widths": [3]}}}}))
    cell = load_grid(path).cells[0].id
    for extra in ([], ["--cell", cell]):
        assert cli(["ablate", str(path), "--out", str(tmp_path / "x"), *extra]) == 2
        assert "has no argument 'widths'" in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_second_ablate_skips_cells_held_by_another_process(tmp_path, fakes):  # noqa: F811
    loaded = _grid(tmp_path)
    out = tmp_path / "out"
    held = loaded.cells[1]
    holder = hold_lock(cell_dir(out, held.id))
    try:
        messages = []
        outcome = run_grid(loaded, out, progress=False, say=messages.append)
        assert fakes.trained == ["star", "hyperparam"] and outcome.held == 1
        assert any(f"cell {held.id}: held by another process, skipped" in m for m in messages)
        assert read_json(cell_dir(out, held.id) / "cell_status.json")["status"] == "pending"
    finally:
        holder.kill()
        holder.wait()
    fakes.trained.clear()
    run_grid(loaded, out, progress=False, say=lambda m: None)
    assert fakes.trained == ["blackbox", "hyperparam"]  # released: now it runs (hyperparam retried)


def test_damaged_grid_files(tmp_path, fakes, capsys):  # noqa: F811
    loaded = _grid(tmp_path)
    out = tmp_path / "out"
    spec = str(tmp_path / "g.yaml")
    cli(["ablate", spec, "--out", str(out), "--no-report", "--no-progress", "--no-compile-cache"])
    star = loaded.cells[0]
    # a damaged cell.json is rewritten from the grid spec; a damaged summary.json is evaluated again
    good = (cell_dir(out, star.id) / "cell.json").read_text()
    (cell_dir(out, star.id) / "cell.json").write_text(good[:50])
    (eval_dir(out, star.id, 40) / "summary.json").write_text("{")
    fakes.evaluated.clear()
    cli(["ablate", spec, "--out", str(out), "--no-report", "--no-progress", "--no-compile-cache"])
    err = capsys.readouterr().err
    assert "cell.json is damaged; rewritten" in err and "summary.json is damaged" in err
    assert (cell_dir(out, star.id) / "cell.json").read_text() == good
    assert fakes.evaluated == [("star", 40, ("adam",))]
    # a damaged grid.json stops the command, nothing changed
    (out / "grid.json").write_text('{"name": ')
    assert cli(["ablate", spec, "--out", str(out), "--no-report", "--no-compile-cache"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'grid.json'}: damaged" in err and "Traceback" not in err
    assert (out / "grid.json").read_text() == '{"name": '
