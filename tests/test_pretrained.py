"""Pretrained optimizers: exported from a finished (tiny, real)
grid cell, loaded with their fingerprint checked, listed through the plugin
hook, evaluated as ``pretrained:NAME``, and a card's number reproduced."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import yaml

import lofw
from lofw.cli.main import main as cli
from lofw.evaluation.sources import resolve_source
from lofw.grid import load_grid, run_grid
from lofw.pretrained_loader import PARAMS, read_card


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    spec = root / "g.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "tiny", "base": {"task": "digits_mlp", "horizon": 20, "meta_steps": 2, "outer": {"lr": 0.01},
                                 "estimator": {"name": "pes", "truncation": 10, "particles": 8}},
        "axes": {"recipe": ["hyperparam"]}, "eval": {"horizons": [40], "seeds": 2, "baselines": ["adam"]},
    }))
    loaded = load_grid(spec)
    outcome = run_grid(loaded, root / "grid", progress=False, say=lambda m: None)
    assert outcome.counts == {"done": 1}
    code = cli(["pretrained", "export", str(root / "grid"), "--variant", "hyperparam", "--seed", "0",
                "--name", "tiny_star", "--into", str(root / "shipped")])
    assert code == 0
    return root / "shipped" / "tiny_star", loaded.cells[0]


def test_card_holds_the_provenance_and_results(exported):
    folder, cell = exported
    card = read_card(folder)
    assert card["recipe_name"] == "hyperparam" and card["task_name"] == "digits_mlp" and card["meta_parameters"] == 193
    assert card["estimator"]["name"] == "pes" and card["estimator"]["settings"]["std"] == 0.01
    assert card["meta_steps"] == 2 and card["meta_seeds"] == [0] and card["lofw_version"] == lofw.__version__
    assert card["grid"]["name"] == "tiny" and card["cell"]["id"] == cell.id
    results = card["results"]["horizons"]
    assert set(results) == {"20", "40"} and {"learned", "adam"} <= set(results["40"]) and "lr" in results["20"]["adam"]
    assert "lofw pretrained export" in card["regenerate"]


def test_loaded_optimizer_equals_the_run_and_reproduces_the_card(exported):
    folder, _ = exported
    opt = lofw.pretrained(str(folder))
    source = resolve_source(folder.parent.parent / "grid" / "cells" / exported[1].id / "run")
    run_opt = source.optimizer
    assert source.kind == "cell" and source.horizon == 20
    for a, b in zip(jax.tree_util.tree_leaves(lofw.meta_parameters(opt)), jax.tree_util.tree_leaves(lofw.meta_parameters(run_opt))):
        np.testing.assert_array_equal(a, b)
    card = read_card(folder)
    result = lofw.evaluate(f"pretrained:{folder}", steps=20, seeds=2, seed=0)
    assert result.summary["optimizers"]["learned"]["mean_loss"] == pytest.approx(
        card["results"]["horizons"]["20"]["learned"]["mean_loss"], rel=1e-6)


def test_fingerprint_mismatch_is_refused(exported, tmp_path):
    import shutil

    folder = tmp_path / "edited"
    shutil.copytree(exported[0], folder)
    data = bytearray((folder / PARAMS).read_bytes())
    data[-1] ^= 1
    (folder / PARAMS).write_bytes(bytes(data))
    with pytest.raises(lofw.ConfigError, match="fingerprint mismatch"):
        lofw.pretrained(str(folder))


class ShipsOne:
    def __init__(self, folder):
        self.folder = folder

    @lofw.hookimpl
    def lofw_register_pretrained(self, register):
        register("tiny_star", str(self.folder))


def test_a_plugin_ships_one_listed_and_usable_with_optax(exported, capsys):
    pm = lofw.get_plugin_manager()
    plugin = ShipsOne(exported[0])
    pm.register(plugin)
    try:
        assert cli(["pretrained", "--json"]) == 0
        listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
        assert listed["tiny_star"]["card"]["fingerprint"] == read_card(exported[0])["fingerprint"]
        assert cli(["pretrained"]) == 0 and "tiny_star" in capsys.readouterr().out
        assert cli(["evaluate", "pretrained:tiny_star", "--steps", "20", "--seeds", "2"]) == 0
        assert "learned" in capsys.readouterr().out
        # the README's use: a plain JAX model of one's own, trained with optax
        tx = lofw.pretrained("tiny_star").as_optax()
        params = {"w": jnp.ones((3,)), "b": jnp.zeros(())}
        loss = lambda p: jnp.sum((p["w"] - 2.0) ** 2) + p["b"] ** 2  # noqa: E731
        state = tx.init(params)
        for _ in range(5):
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            params = optax.apply_updates(params, updates)
        assert np.isfinite(float(loss(params)))
    finally:
        pm.unregister(plugin)
    with pytest.raises(lofw.ConfigError, match="unknown pretrained optimizer 'tiny_star'"):
        lofw.pretrained("tiny_star")


def test_exporting_over_an_existing_optimizer_needs_force(exported, capsys):
    folder, _ = exported
    grid, shipped = folder.parent.parent / "grid", folder.parent
    argv = ["pretrained", "export", str(grid), "--variant", "hyperparam", "--seed", "0", "--name", "tiny_star",
            "--into", str(shipped)]
    before = (folder / PARAMS).read_bytes()
    assert cli(argv) == 2
    assert "exists; give --force to replace it" in capsys.readouterr().err
    assert cli([*argv, "--force"]) == 0
    assert (folder / PARAMS).read_bytes() == before  # the same cell exported again: the same meta-parameters
    assert read_card(folder)["recipe"] is not None
