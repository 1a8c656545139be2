"""Meta-training on a mixture of tasks (lofw.meta.mixture).

The mixture's meta-step is checked against an independent combination of
its members' own estimates (each member's estimator run alone with the key
the mixture gives it): the per-member meta-losses, and the global norm of
the weighted, chance-normalised meta-gradient. A mixture run resumes
bit-identically, trains exactly ``subset`` members per meta-step when asked
to, and refuses bad mixtures with one located message on every entry point.
"""

import equinox as eqx
import jax
import numpy as np
import optax
import pytest
import yaml

import lofw
from lofw.cli.main import main as cli
from lofw.meta.mixture import parse_mixture
from lofw.meta.training import setup_run
from lofw.registry import load_registry

REGISTRY = load_registry()
MIXTURE = {"mixture": [{"task": "digits_mlp", "weight": 3.0}, {"task": "quadratic_family", "weight": 1.0}]}
SMALL = dict(recipe="star", horizon=20, estimator={"name": "pes", "truncation": 10, "particles": 2},
             outer={"lr": 0.01}, checkpoint_every=2)


SCALED = {"mixture": [{"task": "digits_mlp", "weight": 3.0}, {"task": "quadratic_family", "weight": 1.0, "scale": 0.5}]}


@pytest.mark.parametrize(("mixture", "scales"), [(MIXTURE, (np.log(10), 1.0)), (SCALED, (np.log(10), 0.5))])
def test_the_meta_step_combines_the_members_estimates_by_weight_and_chance_loss(mixture, scales):
    config = lofw.meta.config.parse_meta_train_config({**SMALL, "task": mixture, "meta_steps": 1})
    run = setup_run(config, REGISTRY)
    state = run.initial_state
    _, metrics = run.meta_step(state, run.task)
    opt = eqx.combine(state.theta, run.static)
    k_members = jax.random.split(jax.random.fold_in(state.key, state.step))[1]
    grads, losses = [], []
    for i, task in enumerate(run.task):
        grad, out = run.estimator.estimate(opt, task, state.estimator_state[i], jax.random.fold_in(k_members, i))
        scale = scales[i]  # the chance loss, or the member's own scale
        grads.append(jax.tree_util.tree_map(lambda g, s=scale: g / s, grad))
        losses.append(float(np.mean(out.meta_loss)) / scale)
    assert run.task[0].chance_loss == pytest.approx(np.log(10)) and run.task[1].chance_loss is None
    combined = jax.tree_util.tree_map(lambda a, b: 0.75 * a + 0.25 * b, *grads)
    np.testing.assert_allclose(float(metrics["grad_norm"]), float(optax.tree.norm(combined)), rtol=1e-4)
    np.testing.assert_allclose(float(metrics["meta_loss.digits_mlp"]), losses[0], rtol=1e-5)
    np.testing.assert_allclose(float(metrics["meta_loss.quadratic_family"]), losses[1], rtol=1e-5)
    np.testing.assert_allclose(float(metrics["meta_loss"]), 0.75 * losses[0] + 0.25 * losses[1], rtol=1e-5)


def test_a_mixture_run_logs_each_member_and_resumes_bit_identically(tmp_path):
    whole = lofw.meta_train({**SMALL, "task": MIXTURE, "meta_steps": 4}, out=tmp_path / "whole", progress=False)
    assert whole.status == "finished"
    assert {"meta_loss.digits_mlp", "meta_loss.quadratic_family"} <= set(whole.metrics[-1])
    first = lofw.meta_train({**SMALL, "task": MIXTURE, "meta_steps": 4}, out=tmp_path / "split", progress=False,
                            stop_after=2)
    assert first.status == "stopped"
    rest = lofw.meta_train({**SMALL, "task": MIXTURE, "meta_steps": 4}, out=tmp_path / "split", progress=False)
    lines = lambda run: (tmp_path / run / "metrics.jsonl").read_text().splitlines()  # noqa: E731
    assert lines("whole") == lines("split")
    for a, b in zip(jax.tree_util.tree_leaves(whole.optimizer), jax.tree_util.tree_leaves(rest.optimizer)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # evaluation of a mixture run trains its first member
    summary = lofw.evaluate(str(tmp_path / "whole"), steps=30, seeds=1, out=tmp_path / "eval")
    assert summary is not None and (tmp_path / "eval" / "summary.json").is_file()


def test_a_subset_trains_that_many_members_per_meta_step_drawn_by_weight():
    task = {"mixture": [{"task": "quadratic_family", "weight": 1.0},
                        {"name": "q2", "task": {"name": "random_quadratic", "dim": 8}, "weight": 3.0}], "subset": 1}
    result = lofw.meta_train({**SMALL, "task": task, "meta_steps": 40}, progress=False)
    trained = [[k for k in line if k.startswith("meta_loss.")] for line in result.metrics]
    assert all(len(t) == 1 for t in trained)
    share = np.mean([t == ["meta_loss.q2"] for t in trained])
    assert 0.5 < share < 0.95  # P = 3/4 over 40 meta-steps


@pytest.mark.parametrize(("task", "message"), [
    ({"mixture": []}, "task.mixture: empty mixture"),
    ({"mixture": [{"task": "digits_mlp", "weight": 0}]}, "task.mixture[0].weight: must be a positive number"),
    ({"mixture": [{"task": "digits_mlp", "weight": -1.0}]}, "task.mixture[0].weight: must be a positive number"),
    ({"mixture": [{"task": "digits_mlp", "weight": "heavy"}]}, "task.mixture[0].weight: must be a positive number"),
    ({"mixture": [{"task": "digits_mlp"}, {"task": "digits_mlp"}]}, "task.mixture[1]: two members named 'digits_mlp'"),
    ({"mixture": [{"task": {"name": "random_quadratic"}}]}, "task.mixture[0]: an inline task needs a `name`"),
    ({"mixture": [{"task": "digits_mlp", "wieght": 1}]}, "task.mixture[0]: unknown key 'wieght'"),
    ({"mixture": [{"task": "digits_mlp", "scale": 0}]}, "task.mixture[0].scale: must be a positive number"),
    ({"mixture": [{"task": "digits_mlp"}], "subset": 2}, "task.subset: must be an integer from 1 to 1"),
    ({"mixture": [{"task": "digits_mlp"}], "normalise": "adam"}, "task.normalise: unknown 'adam'"),
    ({"mixture": [{"task": "digits_python_mix"}]}, "task.mixture[0].task: a mixture cannot hold a mixture"),
])
def test_bad_mixtures_are_one_located_message(task, message):
    with pytest.raises(lofw.ConfigError) as e:
        parse_mixture(task, REGISTRY)
    assert message in str(e.value)


def _assert_exit_2(capsys, args, message, nothing_at):
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not nothing_at.exists()


def test_meta_train_refuses_a_bad_mixture_before_writing(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"task": {"mixture": [{"task": "digits_mlp"}, {"task": "nope"}]}}))
    _assert_exit_2(capsys, ["meta-train", "--config", str(config), "--out", str(tmp_path / "run")],
                   "task.mixture[1].task: unknown task 'nope'", tmp_path / "run")
    _assert_exit_2(capsys, ["meta-train", "--task", "digits_mlp,digits_mlp", "--out", str(tmp_path / "run")],
                   "two members named 'digits_mlp'", tmp_path / "run")
    _assert_exit_2(capsys, ["meta-train", "--task", "digits_mlp", "--horizon", "200", "--horizon-min", "300",
                            "--out", str(tmp_path / "run")], "min (300) exceeds max (200)", tmp_path / "run")


def test_ablate_refuses_a_bad_mixture_before_writing(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "name": "bad_mixture",
        "base": {"recipe": "star", "meta_steps": 1, "horizon": 20, "estimator": {"truncation": 10}},
        "axes": {"task": ["digits_mlp", {"mixture": [{"task": "digits_mlp", "weight": 0}]}]},
        "seeds": [0],
    }))
    _assert_exit_2(capsys, ["ablate", str(grid), "--out", str(tmp_path / "out")], "weight: must be a positive number",
                   tmp_path / "out")
    text = yaml.safe_load(grid.read_text())
    text["axes"] = {"horizon_schedule": ["constant", {"name": "log_uniform", "min": 5}]}
    grid.write_text(yaml.safe_dump(text))
    _assert_exit_2(capsys, ["ablate", str(grid), "--out", str(tmp_path / "out")],
                   "min (5) is shorter than the truncation (10)", tmp_path / "out")


def test_a_mixture_cell_exports_as_a_pretrained_optimizer_evaluated_on_its_first_member(tmp_path):
    from lofw.evaluation.sources import resolve_source
    from lofw.grid import load_grid, run_grid
    from lofw.pretrained_loader import read_card

    spec = tmp_path / "g.yaml"
    spec.write_text(yaml.safe_dump({"name": "mix", "base": {**SMALL, "task": MIXTURE, "meta_steps": 2},
                                    "axes": {"recipe": ["hyperparam"]}, "eval": {"horizons": [30], "seeds": 1, "baselines": ["adam"]}}))
    assert run_grid(load_grid(spec), tmp_path / "grid", progress=False, say=lambda m: None).counts == {"done": 1}
    assert cli(["pretrained", "export", str(tmp_path / "grid"), "--variant", "hyperparam", "--name", "mix",
                "--into", str(tmp_path / "shipped")]) == 0
    card = read_card(tmp_path / "shipped" / "mix")
    assert card["task"] == MIXTURE and card["evaluation_task"] == "digits_mlp"
    assert set(card["results"]["horizons"]) == {"20", "30"} and "adam" in card["results"]["horizons"]["30"]
    source = resolve_source(f"pretrained:{tmp_path / 'shipped' / 'mix'}", REGISTRY)
    assert source.task == "digits_mlp" and source.horizon == 20
    from lofw.grid.report import write_report
    from lofw.grid.results import load_cells

    (cell,) = load_cells(tmp_path / "grid")[1]
    assert set(cell.members) == {"digits_mlp", "quadratic_family"} and cell.members["digits_mlp"].shape == (2,)
    assert np.all(np.isfinite(cell.members["quadratic_family"]))  # no subset: trained every meta-step
    report = write_report(tmp_path / "grid")
    assert (report / "members.png").stat().st_size > 0 and "members.png" in (report / "summary.md").read_text()
