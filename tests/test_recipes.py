"""Recipes: extends, overrides, and errors that name recipe, slot and choices."""

import subprocess
import sys

import jax
import pytest

import lofw
from lofw.cli.main import main
from lofw.recipes import RecipeConfig


def test_build_accepts_name_dict_and_model():
    by_name = lofw.build("star_no_precond")
    by_dict = lofw.build({"extends": "star", "preconditioner": None})
    by_model = lofw.build(RecipeConfig.model_validate({"extends": "star", "preconditioner": None}))
    for opt in (by_name, by_dict, by_model):
        assert opt.preconditioner is None and opt.nominal is not None


def test_extends_replaces_a_slot():
    opt = lofw.build({"extends": "star", "nominal": {"name": "aggmo"}}, key=jax.random.PRNGKey(0))
    assert type(opt.nominal).__name__ == "AggMo"
    assert type(opt.preconditioner).__name__ == "RMS"


def test_slot_without_name_edits_arguments():
    opt = lofw.build({"extends": "star", "network": {"hidden_sizes": [8, 8]}})
    assert [w.shape for w in opt.network.weights] == [(39, 8), (8, 8), (8, 3)]
    opt = lofw.build({"extends": "star", "blackbox_magnitude": {"beta": 0.01}})
    assert opt.blackbox_magnitude.beta == 0.01


def test_recipe_extending_a_recipe_that_extends():
    reg = lofw.load_registry()
    custom = reg.model_copy(update={"recipes": {**reg.recipes, "mine": RecipeConfig(extends="blackbox")}})
    opt = lofw.build({"extends": "mine", "features": {"momentum_decays": [0.5, 0.9, 0.99]}}, registry=custom)
    assert opt.features.momentum_decays == (0.5, 0.9, 0.99) and opt.nominal is None


@pytest.mark.parametrize(
    "recipe, pattern",
    [
        ("stra", r"unknown recipe 'stra'; valid choices: .*'star'"),
        ({"extends": "stra"}, r"recipe.extends: unknown recipe 'stra'; valid choices: .*'blackbox'"),
        ({"extends": "star", "nominal": {"name": "adamm"}}, r"recipe.nominal: unknown nominal 'adamm'; valid choices: 'adam', 'adam_aggmo', 'aggmo', 'sgd'"),
        ({"extends": "star", "network": {"hiden_sizes": [4]}}, r"recipe.network: network 'mlp' has no argument 'hiden_sizes'; valid arguments: 'hidden_sizes'"),
        ({"extends": "star", "network": {"hidden_sizes": "four"}}, r"recipe.network.hidden_sizes: bad value 'four'"),
        ({"extends": "star", "blackbox_magnitude": {"beta": "big"}}, r"recipe.blackbox_magnitude.beta: bad value 'big'"),
        ({"extends": "star", "features": None}, r"recipe: the `features` slot is required; valid choices: 'adafactor'"),
        ({"extends": "star", "nominal_magnitud": {"name": "exp"}}, r"recipe: nominal_magnitud: unknown key; valid keys: .*'nominal_magnitude'"),
        ({"extends": "star", "nominal": None, "blackbox_magnitude": None}, r"needs a `nominal` term or a `blackbox_magnitude`"),
        ({"extends": "star", "network": None}, r"recipe.network: required \(the components read heads"),
        ({"extends": "hyperparam", "nominal_magnitude": {"name": "constant"}}, r"no component reads a network head"),
        ({"extends": "blackbox", "nominal_magnitude": {"beta": 1.0}}, r"no `name` given and the extended recipe has no nominal_magnitude"),
        ({"extends": "star", "blackbox_magnitude": {"name": "constant", "value": -1.0}}, r"cannot build magnitude 'constant': a magnitude must be positive"),
        ([1, 2], r"a recipe is a registry name, a mapping or a RecipeConfig"),
    ],
)
def test_bad_recipes(recipe, pattern):
    with pytest.raises(lofw.ConfigError, match=pattern):
        lofw.build(recipe)


def test_extends_cycle(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("recipes:\n  a: {extends: b}\n  b: {extends: a}\n")
    with pytest.raises(lofw.ConfigError, match="cycle: a -> b -> a"):
        lofw.build("a", registry=lofw.load_registry(path))


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("recipes:\n  star: {features: {name: adafactor}\n", r"registry.yaml: line \d+, column \d+: YAML syntax error"),
        ("recipe: {}\n", r"registry.yaml: recipe: unknown key; valid keys: .*'recipes'"),
        ("recipes:\n  x: {nominl: {name: sgd}}\n", r"recipes.x.nominl: unknown key; valid keys: .*'nominal'"),
        ("- a\n", r"must be a mapping"),
    ],
)
def test_bad_registry_files(tmp_path, text, pattern):
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    with pytest.raises(lofw.ConfigError, match=pattern):
        lofw.load_registry(path)


def test_cli_bad_registry_exits_2_without_traceback(tmp_path, capsys):
    path = tmp_path / "registry.yaml"
    path.write_text("recipes:\n  x: {extends: nope}\n")
    assert main(["registry", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'nope'" in err and "Traceback" not in err


def test_cli_subprocess_exit_status(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("recipes: [\n")
    out = subprocess.run([sys.executable, "-m", "lofw.cli.main", "registry", "--file", str(path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "YAML syntax error" in out.stderr and "Traceback" not in out.stderr


def test_missing_registry_file_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("LOFW_REGISTRY", str(tmp_path / "nowhere.yaml"))
    with pytest.raises(lofw.ConfigError, match="registry file not found.*LOFW_REGISTRY"):
        lofw.load_registry()
