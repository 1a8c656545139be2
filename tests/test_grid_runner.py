"""The grid runner's bookkeeping with stand-ins for meta_train/evaluate:
statuses, skipping finished cells, a failed or diverged cell does not stop
the grid, baselines trained once, a half-written evaluation is redone."""

from __future__ import annotations

import importlib
import json
import types

import numpy as np
import pytest
import yaml

from lofw.grid import load_grid, run_grid
from lofw.grid.files import cell_dir, eval_dir
from lofw.grid.runner import baseline_owners
from lofw.runtime.disk import read_json, write_json


class Fakes:
    def __init__(self):
        self.trained, self.evaluated = [], []

    def meta_train(self, config, /, *, out, registry=None, progress=True, **_):
        recipe = config.recipe
        self.trained.append(recipe)
        if recipe == "hyperparam":
            raise RuntimeError("boom")
        lines = [{"step": s + 1, "meta_loss": 1.0 / (s + 1)} for s in range(config.meta_steps)]
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        return types.SimpleNamespace(status="finished", optimizer=None, config=config)

    def evaluate(self, run, task=None, *, steps, seeds, baselines=(), out, seed=0, registry=None, **_):
        config = json.loads((run.run_dir.parent / "cell.json").read_text())["resolved"]["meta_train"]
        self.evaluated.append((config["recipe"], steps, tuple(baselines)))
        out.mkdir(parents=True)
        diverged = [config["recipe"] == "blackbox"] + [False] * (seeds - 1)
        names = ["learned", *baselines]
        np.savez(out / "curves.npz", **{n: np.ones((seeds, steps), np.float32) for n in names})
        write_json(out / "summary.json", {"optimizers": {
            n: {"diverged": diverged if n == "learned" else [False] * seeds,
                "n_diverged": sum(diverged) if n == "learned" else 0} for n in names}})


@pytest.fixture
def fakes(monkeypatch):
    f = Fakes()
    # (patched where the runner calls them)
    monkeypatch.setattr(importlib.import_module("lofw.grid.runner"), "meta_train", f.meta_train)
    monkeypatch.setattr(importlib.import_module("lofw.grid.runner"), "evaluate", f.evaluate)
    return f


def _grid(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({
        "name": "fake", "base": {"task": "digits_mlp", "horizon": 10, "meta_steps": 3,
                                 "estimator": {"truncation": 5}},
        "axes": {"recipe": ["star", "blackbox", "hyperparam"]},
        "eval": {"horizons": [20, 40], "seeds": 2, "baselines": ["adam"]},
    }))
    return load_grid(path)


def test_statuses_failed_and_diverged_cells_do_not_stop_the_grid(tmp_path, fakes):
    loaded = _grid(tmp_path)
    out = tmp_path / "out"
    outcome = run_grid(loaded, out, progress=False, say=lambda m: None)
    assert outcome.counts == {"done": 1, "diverged": 1, "failed": 1}
    assert not outcome.ok
    star, blackbox, hyper = loaded.cells
    assert read_json(cell_dir(out, blackbox.id) / "cell_status.json")["eval_diverged"] == {"20": 1, "40": 1}
    failed = read_json(cell_dir(out, hyper.id) / "cell_status.json")
    assert failed["error"] == "RuntimeError: boom" and failed["attempts"] == 1
    assert "RuntimeError: boom" in (cell_dir(out, hyper.id) / "error.txt").read_text()
    # Baselines are trained once per (task, horizons, seeds) group: by the first cell.
    assert baseline_owners(loaded.cells) == {star.id: ("adam",)}
    assert fakes.evaluated == [("star", 20, ("adam",)), ("star", 40, ("adam",)),
                               ("blackbox", 20, ()), ("blackbox", 40, ())]
    grid = read_json(out / "grid.json")
    assert [c["id"] for c in grid["cells"]] == [c.id for c in loaded.cells]
    assert read_json(cell_dir(out, star.id) / "cell.json")["resolved"] == star.resolved
    assert not list(out.rglob("*.partial")) and not list(out.rglob(".*.tmp"))


def test_rerun_skips_finished_cells_and_retries_failed(tmp_path, fakes):
    loaded = _grid(tmp_path)
    out = tmp_path / "out"
    run_grid(loaded, out, progress=False, say=lambda m: None)
    fakes.trained.clear(), fakes.evaluated.clear()
    run_grid(loaded, out, progress=False, say=lambda m: None)
    assert fakes.trained == ["hyperparam"] and fakes.evaluated == []
    assert read_json(cell_dir(out, loaded.cells[2].id) / "cell_status.json")["attempts"] == 2


def test_interrupted_evaluation_is_redone(tmp_path, fakes):
    loaded = _grid(tmp_path)
    out = tmp_path / "out"
    run_grid(loaded, out, progress=False, say=lambda m: None)
    star = loaded.cells[0]
    # A kill during evaluation leaves a scratch folder and no final one; a
    # kill mid-status-write leaves the cell "running".
    target = eval_dir(out, star.id, 40)
    target.rename(target.with_name("h40.partial"))
    write_json(cell_dir(out, star.id) / "cell_status.json", {"status": "running"})
    fakes.trained.clear(), fakes.evaluated.clear()
    outcome = run_grid(loaded, out, progress=False, say=lambda m: None)
    assert fakes.evaluated == [("star", 40, ("adam",))]
    assert outcome.counts["done"] == 1 and target.is_dir() and not target.with_name("h40.partial").exists()
