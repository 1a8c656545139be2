"""evaluate: curves match a hand-written loop, divergence is flagged (not
raised), baselines pick their learning rate from the grid, and a task plugin
written here is found by name, meta-trained and evaluated from its run folder."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lofw
from lofw.evaluation.baselines import OptaxBaseline
from lofw.evaluation.curves import train_curves


class Bowl(lofw.AbstractTask):
    """``mean((w - (target + noise))^2)`` with a random start; meta-loss capped at 10."""

    def init(self, key):
        return {"w": 2.0 * jax.random.normal(key, (8,))}

    def sample_batch(self, key, split="train"):
        return {"target": 1.0 + 0.1 * jax.random.normal(key, (8,))}

    def loss(self, params, batch):
        return jnp.mean((params["w"] - batch["target"]) ** 2)

    def normalizer(self, loss):
        return jnp.where(jnp.isfinite(loss), jnp.clip(loss, 0.0, 10.0), 10.0)

    @property
    def max_meta_loss(self):
        return 10.0


class SGD(lofw.AbstractOptimizer):
    lr: jax.Array

    def init(self, params):
        return ()

    def update(self, grads, state, params):
        return jax.tree_util.tree_map(lambda g: -self.lr * g, grads), state


def hand_loop(opt, task, key, steps):
    k_init, k_data = jax.random.split(key)
    params = task.init(k_init)
    state, losses = opt.init(params), []
    for k in jax.random.split(k_data, steps):
        loss, grads = jax.value_and_grad(task.loss)(params, task.sample_batch(k))
        losses.append(float(loss))
        updates, state = opt.update(grads, state, params)
        params = jax.tree_util.tree_map(jnp.add, params, updates)
    return np.array(losses)


def test_curves_match_a_hand_written_loop():
    task, keys = Bowl(), jax.random.split(jax.random.PRNGKey(0), 3)
    for opt in (SGD(jnp.float32(0.1)), OptaxBaseline("adam", jnp.float32(0.05))):
        curves = np.asarray(train_curves(opt, task, keys, steps=25))
        for i in range(3):
            np.testing.assert_allclose(curves[i], hand_loop(opt, task, keys[i], 25), rtol=1e-5)


def test_divergence_is_flagged_not_raised():
    result = lofw.evaluate(SGD(jnp.float32(50.0)), Bowl(), steps=60, seeds=2)
    entry = result.summary["optimizers"]["learned"]
    assert entry["diverged"] == [True, True] and entry["n_diverged"] == 2
    assert entry["final_loss_mean"] is None
    assert not np.all(np.isfinite(result.curves["learned"]))  # it really blew up to inf/NaN
    json.dumps(result.summary, allow_nan=False)  # and the summary is still valid JSON
    fine = lofw.evaluate(SGD(jnp.float32(0.1)), Bowl(), steps=60, seeds=2)
    assert fine.summary["optimizers"]["learned"]["diverged"] == [False, False]


def test_adam_baseline_picks_the_best_grid_learning_rate():
    grid = (1e-4, 1e-2, 1e-1, 1e1)
    result = lofw.evaluate(SGD(jnp.float32(0.1)), Bowl(), steps=40, seeds=2, baselines=["adam", "nadamw"], lr_grid=grid)
    for name in ("adam", "nadamw"):
        entry = result.summary["optimizers"][name]
        losses = {float(k): v for k, v in entry["lr_grid_losses"].items()}
        assert entry["lr"] == min(losses, key=lambda k: losses[k]) == 1e-1
        assert result.curves[name].shape == (2, 40)
    # the reported adam curve is optax.adam with that learning rate
    key = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(0), i))(jnp.arange(2))[1]
    ref = hand_loop(OptaxBaseline("adam", jnp.float32(0.1)), Bowl(), key, 40)
    np.testing.assert_allclose(result.curves["adam"][1], ref, rtol=1e-5)
    assert isinstance(optax.adam(0.1), optax.GradientTransformation)


def test_unknown_baseline_and_missing_task_are_config_errors(tmp_path):
    with pytest.raises(lofw.ConfigError, match="unknown baseline 'sgd'; valid choices: 'adam', 'nadamw'"):
        lofw.evaluate(SGD(jnp.float32(0.1)), Bowl(), baselines=["sgd"])
    with pytest.raises(lofw.ConfigError, match="give a `task`"):
        lofw.evaluate(SGD(jnp.float32(0.1)))
    with pytest.raises(lofw.ConfigError, match="neither a meta-training run"):
        lofw.evaluate(tmp_path)


class BowlPlugin:
    @lofw.hookimpl
    def lofw_register_components(self, register):
        register("test_bowl", Bowl)


def test_task_plugin_is_found_trained_and_evaluated(tmp_path):
    pm = lofw.get_plugin_manager()
    plugin = BowlPlugin()
    pm.register(plugin)
    lofw.refresh()
    try:
        assert "test_bowl" in lofw.components("task")
        run = lofw.meta_train(
            recipe="hyperparam",
            task={"name": "test_bowl"},
            estimator={"name": "pes", "truncation": 5, "particles": 4},
            horizon=10,
            meta_steps=4,
            out=tmp_path / "run",
            progress=False,
        )
        assert run.status == "finished" and len(run.metrics) == 4
        assert all(np.isfinite(m["meta_loss"]) and m["meta_loss"] < 10.0 for m in run.metrics)
        result = lofw.evaluate(tmp_path / "run", seeds=2, baselines=["adam"], lr_grid=(1e-2, 1e-1))
        assert result.out_dir == tmp_path / "run" / "eval" / "test_bowl-100"  # 10x the horizon
        summary = json.loads((result.out_dir / "summary.json").read_text())
        assert set(summary["optimizers"]) == {"learned", "adam"} and summary["steps"] == 100
        with np.load(result.out_dir / "curves.npz") as curves:
            assert curves["learned"].shape == (2, 100) and curves["adam"].shape == (2, 100)
        from lofw.cli.main import main as cli

        assert cli(["evaluate", str(tmp_path / "run"), "--steps", "20", "--seeds", "2"]) == 0
        assert (tmp_path / "run" / "eval" / "test_bowl-20" / "summary.json").exists()
    finally:
        pm.unregister(plugin)
        lofw.refresh()
    with pytest.raises(lofw.ConfigError, match="unknown task 'test_bowl'"):
        lofw.meta_train(task={"name": "test_bowl"}, out=tmp_path / "other", progress=False)


def test_baseline_tuned_for_n_steps_picks_the_best_mean_over_those_steps():
    grid, n = (1e-3, 1e-2, 1e-1, 3e-1), 3
    source = lofw.Source("sgd", SGD(jnp.float32(0.1)), horizon=10)
    result = lofw.evaluate(source, Bowl(), steps=40, seeds=2, baselines=[f"adam@{n}", "adam@horizon"],
                           lr_grid=grid, tune_seeds=2)
    tune_keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(0), 1_000_000 + i))(jnp.arange(2))
    means = [np.asarray(train_curves(OptaxBaseline("adam", jnp.float32(lr)), Bowl(), tune_keys, steps=n)).mean()
             for lr in grid]
    entry = result.summary["optimizers"][f"adam@{n}"]
    assert entry["lr"] == grid[int(np.argmin(means))] and entry["tuned_for_steps"] == n
    assert result.curves[f"adam@{n}"].shape == (2, 40)
    # tuned for the source's horizon
    assert result.summary["optimizers"]["adam@horizon"]["tuned_for_steps"] == 10
    # an optimizer object has no horizon: @horizon is refused, not silently tuned for some default
    with pytest.raises(lofw.ConfigError, match="has no meta-training horizon"):
        lofw.evaluate(SGD(jnp.float32(0.1)), Bowl(), steps=40, seeds=2, baselines=["adam@horizon"])


@pytest.mark.parametrize("bad", ["adam@0", "adam@x", "sgd@5"])
def test_bad_baseline_tuning_specs_are_config_errors(bad):
    with pytest.raises(lofw.ConfigError, match="valid choices: 'adam', 'nadamw', each optionally @N or @horizon"):
        lofw.evaluate(SGD(jnp.float32(0.1)), Bowl(), baselines=[bad])


def test_results_print_as_their_summary_not_their_arrays():
    result = lofw.evaluate(SGD(jnp.float32(0.1)), Bowl(), steps=600, seeds=3, baselines=["adam"], lr_grid=(1e-2, 1e-1))
    text = repr(result)
    lines = text.splitlines()
    assert lines[0].startswith("EvaluationResult(") and "steps=600" in lines[0] and "seeds=3" in lines[0]
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["learned", "adam"]
    assert f"mean_loss={result.summary['optimizers']['adam']['mean_loss']:.4g}," in lines[2]
    assert len(text) < 400  # 3 x 600 losses per optimizer are not printed
