"""Task suites, ``lofw generalize`` and a grid's ``eval.tasks``, on tiny settings.

One tiny grid (one cell, one meta-step) is run with ``eval.tasks``; its cell
is then a SOURCE of ``lofw generalize`` beside an untrained recipe. Every
task here has the same shapes (20 steps, 2 seeds), so the compiled inner
loops are shared by the tests."""

from __future__ import annotations

import csv
import importlib
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

import lofw
from lofw.cli.main import main
from lofw.errors import ConfigError
from lofw.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
TINY = {"name": "image_mlp", "dataset": {"name": "digits"}, "hidden_sizes": [], "batch_size": 16}
STEPS, SEEDS = 20, 2


def write_registry(path: Path, **sections) -> Path:
    data = yaml.safe_load((ROOT / "registry.yaml").read_text())
    data["tasks"]["tiny"] = TINY
    data["suites"] = {"mini": ["tiny"]}
    for key, value in sections.items():
        data[key] = value
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def registry_file(tmp_path_factory):
    return write_registry(tmp_path_factory.mktemp("reg") / "registry.yaml")


@pytest.fixture(scope="module")
def grid_run(registry_file, tmp_path_factory):
    """A one-cell grid with eval.tasks, run to the end: (registry, loaded grid, out)."""
    registry = load_registry(registry_file)
    path = tmp_path_factory.mktemp("grid") / "grid.yaml"
    path.write_text(yaml.safe_dump({
        "name": "ood", "base": {"recipe": "star", "task": "tiny", "horizon": 10, "meta_steps": 1,
                                "estimator": {"name": "pes", "truncation": 5, "particles": 2}},
        "eval": {"horizons": [STEPS], "seeds": SEEDS, "baselines": ["adam", "adam@horizon"], "tasks": "mini"},
    }))
    loaded = lofw.load_grid(path, registry)
    out = path.parent / "out"
    outcome = lofw.run_grid(loaded, out, registry=registry, progress=False, say=lambda m: None)
    assert sum(outcome.counts.values()) == 1 and outcome.ok
    lofw.write_report(out)
    return registry, loaded, out


# --- suites in the registry --------------------------------------------------------------------

@pytest.mark.parametrize("suites, expected", [
    ({"s": ["tiny", "nosuch"]}, ["suites.s[1]", "unknown task 'nosuch'", "'digits_mlp'"]),
    ({"s": []}, ["suites.s", "empty suite"]),
    ({"s": [{"task": "tiny", "step": 3}]}, ["suites.s.0.step", "unknown key", "'steps'", "'task'"]),
    ({"s": [{"task": "tiny", "steps": 0}]}, ["suites.s.0.steps", "greater than 0"]),
    ({"s": ["tiny", "tiny"]}, ["suites.s[1]", "listed twice"]),
])
def test_suite_validation_names_file_suite_and_choices(tmp_path, suites, expected):
    path = write_registry(tmp_path / "r.yaml", suites=suites)
    with pytest.raises(ConfigError) as e:
        load_registry(path)
    assert str(path.resolve()) in str(e.value)
    for text in expected:
        assert text in str(e.value)


def test_suite_entries_and_registry_listing(registry_file, capsys):
    reg = load_registry(write_registry(registry_file.parent / "r2.yaml",
                                       suites={"s": ["tiny", {"task": "digits_mlp", "steps": 7}]}))
    assert [(e.task, e.steps) for e in reg.suites["s"]] == [("tiny", None), ("digits_mlp", 7)]
    assert main(["registry", "--file", str(reg.path)]) == 0
    assert "suite s: tiny, digits_mlp (7 steps)" in capsys.readouterr().out


def test_project_suites_name_registered_tasks():
    reg = load_registry()
    for name, entries in reg.suites.items():
        assert entries and all(e.task in reg.tasks for e in entries), name


# --- NAdamW random search -------------------------------------------------------------------

class Bowl(lofw.AbstractTask):
    def init(self, key):
        return {"w": 2.0 * jax.random.normal(key, (4,))}

    def sample_batch(self, key, split="train"):
        return {"t": 1.0 + 0.1 * jax.random.normal(key, (4,))}

    def loss(self, params, batch):
        return jnp.mean((params["w"] - batch["t"]) ** 2)

    def normalizer(self, loss):
        return jnp.where(jnp.isfinite(loss), jnp.clip(loss, 0.0, 10.0), 10.0)


def test_random_search_picks_the_argmin_of_its_trials():
    from lofw.evaluation.curves import train_curves
    from lofw.evaluation.nadamw_search import DEFAULTS, nadamw, random_search

    task, keys = Bowl(), jax.random.split(jax.random.PRNGKey(3), 2)
    result = random_search(task, keys, steps=15, trials=5, batch=2, key=jax.random.PRNGKey(1))
    assert {k: v[0] for k, v in result.trials.items()} == DEFAULTS
    assert 1e-5 <= result.trials["lr"].min() and result.trials["lr"].max() <= 1e-1
    assert set(result.trials["cosine"]) <= {0.0, 1.0} and result.trials["warmup"].max() <= 0.1
    scores = []   # each trial again, one at a time, scored by hand
    for i in range(5):
        opt = nadamw({k: v[i] for k, v in result.trials.items()}, 15)
        curves = np.asarray(train_curves(opt, task, keys, steps=15))
        scores.append(np.mean(np.clip(np.nan_to_num(curves, nan=10.0, posinf=10.0), 0.0, 10.0)))
    np.testing.assert_allclose(result.scores, scores, rtol=1e-4)
    assert result.best == int(np.argmin(scores))


def test_nadamw_schedule_warmup_then_cosine():
    from lofw.evaluation.nadamw_search import nadamw

    opt = nadamw({"lr": 1.0, "b1": 0.9, "b2": 0.999, "weight_decay": 0.0, "warmup": 0.1, "cosine": 1.0}, 100)
    lr = [float(opt.schedule(t)) for t in (0, 4, 9, 10, 55, 99)]
    np.testing.assert_allclose(lr[:3], [0.1, 0.5, 1.0], rtol=1e-5)
    np.testing.assert_allclose(lr[4], 0.5 * (1 + np.cos(np.pi * 45 / 90)), rtol=1e-5)
    assert lr[5] < 1e-3
    flat = nadamw({"lr": 0.5, "b1": 0.9, "b2": 0.999, "weight_decay": 0.0, "warmup": 0.0, "cosine": 0.0}, 100)
    assert float(flat.schedule(0)) == float(flat.schedule(99)) == 0.5


# --- lofw generalize end to end -------------------------------------------------------------------

def _final(curves):
    return curves[:, -max(1, curves.shape[1] // 100):].mean(axis=1)


def test_generalize_end_to_end_resumes_and_matches_its_curves(grid_run, monkeypatch, capsys):
    registry, loaded, grid_out = grid_run
    cell = grid_out / "cells" / loaded.cells[0].id
    out = grid_out.parent / "gen"
    argv = ["generalize", str(cell), "star", "--suite", "mini", "--steps", str(STEPS), "--seeds", str(SEEDS),
            "--baseline", "adam", "--baseline", "nadamw", "--nadamw-trials", "3", "--out", str(out),
            "--registry", str(registry.path), "--no-progress", "--no-compile-cache"]
    assert main(argv) == 0
    manifest = json.loads((out / "generalize.json").read_text())
    names = [o["name"] for o in manifest["optimizers"]]
    assert names == ["base, seed=0", "star", "adam", "nadamw"]
    for name in ("base_seed=0", "star", "adam", "nadamw"):
        assert {"curves.npz", "summary.json"} <= {p.name for p in (out / "tiny" / name).iterdir()}
    assert {"summary.csv", "summary.md", "generalize.png"} <= {p.name for p in out.iterdir()}
    tuning = json.loads((out / "tiny" / "nadamw" / "tuning.json").read_text())
    assert tuning["best"] == int(np.argmin([t["score"] if t["score"] is not None else np.inf
                                            for t in tuning["trials"]]))

    # summary.csv against the curves files
    task = lofw.build_task("tiny", registry)
    rows = {r["optimizer"]: r for r in csv.DictReader((out / "summary.csv").open())}
    means = {}
    for name, folder in zip(names, ("base_seed=0", "star", "adam", "nadamw")):
        with np.load(out / "tiny" / folder / "curves.npz") as npz:
            curves = np.asarray(npz["loss"], np.float64)
        assert curves.shape == (SEEDS, STEPS)
        final = _final(curves)
        diverged = ~np.isfinite(curves).all(axis=1) | (final > task.max_meta_loss)
        means[name] = np.mean(np.clip(np.nan_to_num(curves, nan=10.0, posinf=10.0), 0.0, task.max_meta_loss))
        row = rows[name]
        assert int(row["diverged"]) == diverged.sum()
        if (~diverged).any():
            np.testing.assert_allclose(float(row["final_loss"]), final[~diverged].mean(), rtol=1e-4)
        np.testing.assert_allclose(float(row["mean_loss"]), means[name], rtol=1e-4)
    for name in names:
        np.testing.assert_allclose(float(rows[name]["ratio_to_adam"]), means[name] / means["adam"], rtol=1e-4)
    assert rows["base, seed=0"]["horizon"] == "10" and rows["star"]["horizon"] == str(STEPS)
    # the cell evaluated by generalize equals the grid's own out-of-distribution run (same seeds)
    with np.load(cell / "generalize" / "tiny" / "learned" / "curves.npz") as a, \
            np.load(out / "tiny" / "base_seed=0" / "curves.npz") as b:
        np.testing.assert_array_equal(a["loss"], b["loss"])

    # a second run trains nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("tiny/*/summary.json")}
    monkeypatch.setattr(importlib.import_module("lofw.evaluation.generalize"), "train_curves", lambda *a, **k: pytest.fail("a finished pair was run again"))
    assert main(argv) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("tiny/*/summary.json")}
    assert "nadamw" in capsys.readouterr().out


def test_worker_command_line_round_trips():
    import argparse

    from lofw.cli import generalize as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["a", "b", "--suite", "s", "--steps", "9", "--baseline", "nadamw@5", "--jobs", "2",
                              "--seed-batch", "1", "--registry", "r.yaml"])
    again = parser.parse_args(cli._worker_args(args, Path("o"), ["nadamw@5"]) + ["--task", "t"])
    for key in ("sources", "suite", "steps", "seeds", "seed", "baseline", "nadamw_trials", "seed_batch", "registry"):
        assert getattr(again, key) == getattr(args, key), key
    assert again.out == "o" and again.task == "t" and again.no_report and again.jobs == 1


# --- grids: eval.tasks -----------------------------------------------------------------------------

def test_grid_ood_results_and_report(grid_run):
    registry, loaded, out = grid_run
    folder = out / "cells" / loaded.cells[0].id / "generalize" / "tiny"
    for name in ("learned", "adam", "adam@horizon"):
        summary = json.loads((folder / name / "summary.json").read_text())
        assert summary["steps"] == STEPS and summary["seeds"] == SEEDS
    # adam@horizon: tuned for the cell's meta-training horizon (10), adam for the whole run
    assert json.loads((folder / "adam@horizon" / "tuning.json").read_text())["tuned_for_steps"] == 10
    assert json.loads((folder / "adam" / "tuning.json").read_text())["tuned_for_steps"] == STEPS
    assert json.loads((folder / "learned" / "summary.json").read_text())["horizon"] == 10
    md = (out / "report" / "summary.md").read_text()
    assert "## Out of distribution" in md and "| tiny | base |" in md
    assert (out / "report" / "ood.png").is_file() and (out / "report" / "ood_summary.csv").is_file()


def test_eval_tasks_are_not_part_of_the_cell_id(grid_run, tmp_path):
    registry, loaded, _ = grid_run
    data = yaml.safe_load(Path(loaded.source).read_text())
    data["eval"].pop("tasks")
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data))
    assert lofw.load_grid(path, registry).cells[0].id == loaded.cells[0].id


@pytest.mark.parametrize("tasks, expected", [
    ("nosuch", ["eval.tasks", "unknown suite 'nosuch'", "'mini'"]),
    (["tiny", "nosuch"], ["eval.tasks[1]", "unknown task 'nosuch'", "'digits_mlp'"]),
    ([], ["eval.tasks", "empty list"]),
    ({"a": 1}, ["eval.tasks"]),
])
def test_grid_eval_tasks_validation(registry_file, tmp_path, tasks, expected):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"name": "g", "base": {"task": "tiny"}, "eval": {"tasks": tasks}}))
    with pytest.raises(ConfigError) as e:
        lofw.load_grid(path, load_registry(registry_file))
    assert str(path) in str(e.value)
    for text in expected:
        assert text in str(e.value)


# --- bad input on the command line: one message, exit 2, nothing written --------------------------

def test_bad_inputs_one_message_exit_2_nothing_written(registry_file, tmp_path):
    bad_suite = write_registry(tmp_path / "bad.yaml", suites={"s": ["tiny", "nosuch"]})
    (tmp_path / "empty").mkdir()
    cases = {
        "unknown suite": (["star", "--suite", "nope"], ["--suite", "unknown suite 'nope'", "'mini'"]),
        "task of a suite": (["star", "--suite", "s", "--registry", str(bad_suite)],
                            ["suites.s[1]", "unknown task 'nosuch'", "'tiny'"]),
        "unknown source": (["nosuch", "--suite", "mini"], ["unknown source 'nosuch'", "run folder", "'star'"]),
        "not a run folder": ([str(tmp_path / "empty"), "--suite", "mini"], ["neither a meta-training run", "'star'"]),
        "unknown baseline": (["star", "--suite", "mini", "--baseline", "sgd"], ["unknown baseline 'sgd'", "'nadamw'"]),
        "bad steps": (["star", "--suite", "mini", "--steps", "0"], ["--steps", "at least 1"]),
    }
    procs = {}
    for name, (args, _) in cases.items():
        out = tmp_path / f"out-{len(procs)}"
        if "--registry" not in args:
            args = args + ["--registry", str(registry_file)]
        command = [sys.executable, "-m", "lofw.cli.main", "generalize", *args, "--out", str(out)]
        procs[name] = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out)
    for name, (proc, out) in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (name, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)
        for text in cases[name][1]:
            assert text in err, (name, text, err)
        assert not out.exists(), name


def test_a_pretrained_source_is_the_shipped_optimizer_with_its_cards_horizon():
    import equinox as eqx

    from lofw.evaluation.sources import resolve_source

    source = resolve_source("pretrained:star", load_registry())
    card = importlib.import_module("lofw.pretrained_loader").read_card("star")
    assert (source.label, source.horizon) == ("star", card["horizon"]) and card["horizon"] == 200
    shipped = eqx.filter(lofw.pretrained("star"), eqx.is_inexact_array)
    got = eqx.filter(source.optimizer, eqx.is_inexact_array)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(shipped)))


def test_a_run_held_by_another_process_is_skipped_and_left_to_it(registry_file, tmp_path, capsys):
    from run_helpers import hold_lock

    out = tmp_path / "gen"
    argv = ["generalize", "star", "--suite", "mini", "--steps", str(STEPS), "--seeds", str(SEEDS),
            "--baseline", "adam", "--out", str(out), "--registry", str(registry_file), "--no-progress",
            "--no-compile-cache"]
    holder = hold_lock(out / "tiny" / "adam")  # another lofw generalize is running adam on this task
    try:
        assert main(argv) == 0
    finally:
        holder.kill()
        holder.wait()
    assert f"skipping tiny/adam: held by process {holder.pid}" in capsys.readouterr().err
    assert (out / "tiny" / "star" / "summary.json").is_file()
    assert not (out / "tiny" / "adam" / "summary.json").exists()
    assert main(argv) == 0  # the holder died without finishing: this run does it
    assert (out / "tiny" / "adam" / "summary.json").is_file()
