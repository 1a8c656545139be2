"""meta_train end to end on digits_mlp: it learns, resumes bit-identically, and
refuses bad input with one message and exit status 2, writing nothing.

All runs here share one configuration, so the meta-step compiles once per
test session (``cached_meta_step``).
"""

import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest

import lofw
from lofw.cli.main import main as cli
from lofw.meta.checkpoint import CHECKPOINT, CONFIG, METRICS, STATUS, load_checkpoint
from lofw.meta.training import setup_run

# Outer lr 1e-2 (not the paper's 1e-4) so that tens of steps suffice: the
# meta-loss (mean loss over a 20-step horizon) falls from ~2.25 to ~2.03.
CONFIG_DICT = {
    "recipe": "star",
    "task": "digits_mlp",
    "estimator": {"name": "pes", "truncation": 10, "particles": 8},
    "outer": {"lr": 1e-2},
    "horizon": 20,
    "meta_steps": 30,
    "checkpoint_every": 5,
    "seed": 0,
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    return lofw.meta_train(CONFIG_DICT, out=out, progress=False)


def test_short_meta_training_lowers_meta_loss(uninterrupted):
    losses = np.array([m["meta_loss"] for m in uninterrupted.metrics])
    assert uninterrupted.status == "finished" and len(losses) == 30
    first, last = losses[:6].mean(), losses[-6:].mean()
    assert last < first - 0.15, f"meta-loss did not go down: first steps {first:.3f}, last steps {last:.3f}"
    assert all(m["nan_grads"] == 0 for m in uninterrupted.metrics)


def test_run_folder_contents(uninterrupted):
    run_dir = uninterrupted.run_dir
    assert {CONFIG, METRICS, CHECKPOINT, STATUS} <= {p.name for p in run_dir.iterdir()}
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")], "temporary files left behind"
    status = json.loads((run_dir / STATUS).read_text())
    assert status["status"] == "finished" and status["step"] == 30
    lines = [json.loads(x) for x in (run_dir / METRICS).read_text().splitlines()]
    assert [m["step"] for m in lines] == list(range(1, 31))
    assert set(lines[0]) == {"step", "meta_loss", "grad_norm", "nan_grads", "resets", "diverged", "theta_norm", "dead_steps"}
    # the checkpoint holds the optimizer the result returned
    setup = setup_run(uninterrupted.config, lofw.load_registry())
    state, header = load_checkpoint(run_dir, setup.initial_state)
    assert header["step"] == 30 and header["meta_parameters"] == 203
    for a, b in zip(jax.tree_util.tree_leaves(state.theta), jax.tree_util.tree_leaves(lofw.meta_parameters(uninterrupted.optimizer))):
        np.testing.assert_array_equal(a, b)


class InterruptAt:
    """A logging plugin that presses Ctrl-C after meta-step ``step``."""

    def __init__(self, step):
        self.step, self.seen = step, []

    @lofw.hookimpl
    def lofw_log_metrics(self, run_dir, step, metrics):
        self.seen.append(step)
        if step == self.step:
            raise KeyboardInterrupt


def test_resume_is_bit_identical(uninterrupted, tmp_path):
    out = tmp_path / "resumed"
    first = lofw.meta_train(CONFIG_DICT, out=out, progress=False, stop_after=7)  # between checkpoints
    assert first.status == "stopped" and first.step == 7
    # simulate a crash after step 9 that left two metrics lines past the checkpoint
    pm = lofw.get_plugin_manager()
    plugin = InterruptAt(12)
    pm.register(plugin)
    try:
        with pytest.raises(KeyboardInterrupt):
            lofw.meta_train(CONFIG_DICT, out=out, progress=False)
    finally:
        pm.unregister(plugin)
    assert plugin.seen == list(range(8, 13))
    assert json.loads((out / STATUS).read_text())["status"] == "interrupted"
    with open(out / METRICS, "a") as f:  # lines a crash could leave after the checkpoint
        f.write('{"step": 13, "meta_loss": 0.0}\n{"step": 14, "meta')
    resumed = lofw.meta_train(CONFIG_DICT, out=out, progress=False)
    assert resumed.status == "finished"
    assert (out / METRICS).read_text() == (uninterrupted.run_dir / METRICS).read_text()
    assert (out / CHECKPOINT).read_bytes() == (uninterrupted.run_dir / CHECKPOINT).read_bytes()
    again = lofw.meta_train(CONFIG_DICT, out=out, progress=False)  # a finished run returns at once
    assert again.status == "finished" and again.step == 30


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in folder.iterdir()}


def test_folder_of_another_recipe_is_refused(uninterrupted, tmp_path, capsys):
    before = _snapshot(uninterrupted.run_dir)
    with pytest.raises(lofw.ConfigError, match=r"recipe: 'star' -> 'blackbox'"):
        lofw.meta_train({**CONFIG_DICT, "recipe": "blackbox"}, out=uninterrupted.run_dir, progress=False)
    code = cli(["meta-train", "hyperparam", "--task", "digits_mlp", "--horizon", "20", "--truncation", "10",
                "--out", str(uninterrupted.run_dir), "--no-progress", "--no-compile-cache"])
    err = capsys.readouterr().err
    assert code == 2 and "different configuration" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(uninterrupted.run_dir) == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "no_such_task"], "unknown task 'no_such_task'; valid choices: "),
        (["--task", "digits_mlp", "--estimator", "nes"], "unknown estimator 'nes'; valid choices: 'es', 'pes', 'tbptt'"),
        (["--task", "digits_mlp", "--horizon", "20"], "horizon (20) is shorter than estimator.truncation (50)"),
        (["--task", "digits_mlp", "--estimator", "tbptt", "--std", "0.1"], "estimator 'tbptt' has no argument 'std'"),
        (["no_such_recipe", "--task", "digits_mlp"], "unknown recipe 'no_such_recipe'"),
    ],
)
def test_bad_input_one_message_exit_2_nothing_written(argv, message, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli(["meta-train", *argv, "--out", str(out), "--no-progress", "--no-compile-cache"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_non_run_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(lofw.ConfigError, match="holds no lofw run"):
        lofw.meta_train(CONFIG_DICT, out=tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_config_models_reject_unknown_keys():
    from lofw.meta.config import parse_meta_train_config

    with pytest.raises(lofw.ConfigError, match=r"estimator.trunc: unknown key; valid keys: 'arguments', 'name'"):
        parse_meta_train_config({"estimator": {"trunc": 5}})
    with pytest.raises(lofw.ConfigError, match=r"outer.lr"):
        parse_meta_train_config({"outer": {"lr": -1.0}})


def test_registry_presets_fill_the_estimator():
    from lofw.meta.config import MetaTrainConfig, resolve_config

    reg = lofw.load_registry()
    resolved = resolve_config(MetaTrainConfig(estimator={"name": "pes", "particles": 3}), reg)
    assert (resolved.estimator.truncation, resolved.estimator.std, resolved.estimator.particles) == (50, 0.01, 3)
    assert resolve_config(resolved, reg) == resolved  # idempotent
    tbptt = resolve_config(MetaTrainConfig(estimator={"name": "tbptt"}), reg)
    assert tbptt.estimator.std is None


def test_a_whole_optimizer_component_is_meta_trained():
    """``recipe: {optimizer: NAME}``: the NQM's dense preconditioner on the nqm task, in memory."""
    run = lofw.meta_train(
        recipe={"optimizer": "dense_preconditioner", "dim": 2, "alpha": 0.1},
        task="nqm",
        estimator={"name": "es", "truncation": 5, "particles": 4},
        horizon=10,
        meta_steps=3,
        progress=False,
    )
    assert run.status == "finished" and run.run_dir is None and len(run.metrics) == 3
    assert run.optimizer.P.shape == (2, 2)
    assert not np.array_equal(np.asarray(run.optimizer.P), np.zeros((2, 2)))  # it moved from its zero init


def test_result_prints_as_its_summary(uninterrupted):
    text = repr(uninterrupted)
    last = uninterrupted.metrics[-1]["meta_loss"]
    assert text == f"MetaTrainResult(status='finished', step=30/30, last meta_loss={last!r}, run_dir={uninterrupted.run_dir!r})"
