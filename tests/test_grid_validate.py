"""Every grid-file error: one message naming the file, the dotted path and the
valid choices; exit status 2; no traceback; nothing created on disk."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from lofw.cli.main import main

GOOD = {
    "name": "g",
    "base": {"recipe": "star", "task": "digits_mlp", "meta_steps": 2, "horizon": 50,
             "estimator": {"name": "pes", "truncation": 10, "particles": 2}},
    "axes": {"recipe": ["star", "blackbox"], "outer.weight_decay": [0.0, 0.5]},
    "zip": [{"estimator.truncation": [10, 25], "estimator.std": [0.01, 0.02]}],
    "exclude": [{"recipe": "blackbox", "outer.weight_decay": 0.5}],
    "seeds": [0],
}


def _edit(**changes):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    for key, value in changes.items():
        node = data
        *parents, last = key.split("/")
        for p in parents:
            node = node[p]
        node[last] = value
    return yaml.safe_dump(data)


CASES = {
    # name: (file text, substrings the message must contain)
    "unknown top-level key": (_edit(axis={"recipe": ["star"]}), ["axis", "unknown key", "'axes'", "'zip'"]),
    "unknown base key": (_edit(**{"base/recipes": "star"}), ["base.recipes", "unknown key", "'recipe'"]),
    "unknown eval key": (_edit(eval={"horizon": [10]}), ["eval.horizon", "unknown key", "'horizons'"]),
    "path not in base": (_edit(**{"axes/outer.wd": [0.1]}), ["axes.outer.wd", "'outer.wd'", "base.outer", "'weight_decay'"]),
    "path into a recipe name": (_edit(**{"axes/recipe.network": [{"name": "mlp"}]}),
                                ["axes.recipe.network", "base.recipe is 'star', not a mapping"]),
    "wrong type in axis": (_edit(**{"axes/outer.weight_decay": [0.5, "big"]}),
                           ["axes.outer.weight_decay[1]", "valid number", "'big'"]),
    "wrong type of axes": (_edit(**{"axes/recipe": "star"}), ["axes.recipe", "valid list"]),
    "unknown recipe": (_edit(**{"axes/recipe": ["blackbox", "strr"]}),
                       ["axes.recipe[1]", "unknown recipe 'strr'", "'star'", "'hyperparam'"]),
    "unknown task": (_edit(**{"base/task": "mnist_mpl"}), ["base.task", "unknown task 'mnist_mpl'", "'digits_mlp'"]),
    "unknown estimator": (_edit(**{"axes/estimator.name": ["pes", "pez"]}),
                          ["axes.estimator.name[1]", "unknown estimator 'pez'", "'pes'"]),
    "unknown baseline": (_edit(eval={"baselines": ["adamm"]}), ["eval.baselines[0]", "'adamm'", "'adam'"]),
    "empty axis": (_edit(**{"axes/recipe": []}), ["axes.recipe", "empty axis"]),
    "zip unequal lengths": (_edit(zip=[{"estimator.truncation": [10, 25], "estimator.std": [0.01]}]),
                            ["zip[0]", "unequal lengths", "estimator.truncation has 2", "estimator.std has 1"]),
    "exclude matches no value": (_edit(exclude=[{"recipe": "adam"}]),
                                 ["exclude[0].recipe", "'adam' matches no value", "'star', 'blackbox'"]),
    "exclude key not varied": (_edit(exclude=[{"horizon": 50}]),
                               ["exclude[0].horizon", "not a varied key", "'outer.weight_decay'", "'recipe'"]),
    "horizon shorter than truncation": (_edit(zip=[{"estimator.truncation": [10, 100], "estimator.std": [0.01, 0.02]}]),
                                        ["zip[0].estimator.truncation[1]", "shorter than estimator.truncation"]),
    "yaml syntax": ("name: g\naxes: {recipe: [star, blackbox\n", ["YAML syntax error", "line 3"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_error_is_one_message_exit_2_nothing_written(case, tmp_path, capsys):
    text, expected = CASES[case]
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    assert main(["ablate", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one message, one line
    assert err.startswith(f"lofw ablate: error: {path}"), err
    for piece in expected:
        assert piece in err, (piece, err)
    assert "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.yaml"]


def test_good_grid_passes_and_dry_run_writes_nothing(tmp_path, capsys):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    assert main(["ablate", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    # 2 recipes x 2 decays x 2 zip rows - 2 excluded = 6 cells
    assert "6 cells = 6 variants x 1 seeds" in text
    assert not (tmp_path / "out").exists()


def test_unknown_registry_grid_name(capsys):
    assert main(["ablate", "quickstrat", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unknown grid 'quickstrat'" in err and "'quickstart'" in err and "'fig3_fmnist'" in err


def test_registry_grids_all_validate(capsys):
    from lofw.grid import load_grid
    from lofw.registry import load_registry

    reg = load_registry()
    expected = {"quickstart": 8, "meta_init": 6, "star_weight_decay": 110, "fig3_fmnist": 20, "fig3_cifar10": 20,
                "app_weight_decay": 40, "app_preconditioner": 20, "app_nominal": 20, "stable_star": 51,
                "fig3_digits_h2000": 30, "generalist": 3, "task_distribution": 5}
    assert {name: len(load_grid(name, reg).cells) for name in reg.grids} == expected


def test_cli_process_exit_status_and_no_traceback(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(CASES["unknown recipe"][0])
    proc = subprocess.run([sys.executable, "-m", "lofw.cli.main", "ablate", str(path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "unknown recipe 'strr'" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_out_folder_of_another_grid_is_refused(tmp_path, capsys):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    out = tmp_path / "out"
    out.mkdir()
    (out / "grid.json").write_text('{"name": "other"}')
    assert main(["ablate", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds a run of grid 'other', not 'g'" in err
    assert sorted(p.name for p in out.iterdir()) == ["grid.json"]
    assert main(["ablate", str(path), "--out", str(tmp_path / "o2"), "--jobs", "0"]) == 2
    assert "--jobs: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
