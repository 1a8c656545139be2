"""Run folders survive damage and concurrency (issue 12): a damaged checkpoint
falls back to the previous one or stops with one message; damaged metrics,
grid and cell files are handled; nothing is created before the config is
valid; one writer per run folder and per grid cell (real processes); the
TensorBoard logger writes events TensorBoard reads back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from test_grid_runner import Fakes, _grid, fakes  # noqa: F401 - the fixture
from test_meta_train import CONFIG_DICT

import lofw
from lofw.cli.main import main as cli
from lofw.grid import load_grid, run_grid
from lofw.grid.files import cell_dir, eval_dir
from lofw.meta.checkpoint import CHECKPOINT, METRICS, PREVIOUS, STATUS
from lofw.runtime.disk import read_json, write_json

# the meta-step of test_meta_train (compiled once per session), 4 meta-steps
ARGS = ["star", "--task", "digits_mlp", "--estimator", "pes", "--truncation", "10", "--particles", "8",
        "--lr", "0.01", "--horizon", "20", "--seed", "0", "--checkpoint-every", "2", "--no-progress",
        "--no-compile-cache"]


@pytest.fixture(scope="module")
def run4(tmp_path_factory):
    out = tmp_path_factory.mktemp("safe") / "run"
    assert cli(["meta-train", *ARGS, "--steps", "4", "--out", str(out), "--log", "tensorboard"]) == 0
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("tensorboard"))
    return tmp_path / "run"


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_tensorboard_events_read_back(run4):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run4 / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"meta_loss", "grad_norm", "nan_grads", "resets", "theta_norm"} <= tags
    meta = [(e.step, e.value) for e in acc.Scalars("meta_loss")]
    lines = [json.loads(x) for x in (run4 / METRICS).read_text().splitlines()]
    assert [s for s, _ in meta] == [1, 2, 3, 4]
    assert [v for _, v in meta] == pytest.approx([m["meta_loss"] for m in lines], rel=1e-6)


def test_previous_checkpoint_is_kept_and_a_damaged_latest_falls_back(run4, tmp_path, capsys):
    run = _copy(run4, tmp_path)
    assert json.loads(run.joinpath(CHECKPOINT).read_bytes().splitlines()[0])["step"] == 4
    assert json.loads(run.joinpath(PREVIOUS).read_bytes().splitlines()[0])["step"] == 2
    with open(run / CHECKPOINT, "r+b") as f:
        f.truncate(100)
    with pytest.warns(UserWarning, match=r"checkpoint.eqx is damaged .*resumed from checkpoint.prev.eqx \(meta-step 2\)"):
        assert cli(["meta-train", *ARGS, "--steps", "4", "--out", str(run)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    # steps 3-4 were redone from the previous checkpoint: same metrics as the undamaged run
    assert (run / METRICS).read_text() == (run4 / METRICS).read_text()
    assert (run / CHECKPOINT).read_bytes() == (run4 / CHECKPOINT).read_bytes()
    assert (run / (CHECKPOINT + ".damaged")).stat().st_size == 100


def test_no_usable_checkpoint_stops_with_one_message(run4, tmp_path, capsys):
    run = _copy(run4, tmp_path)
    for name in (CHECKPOINT, PREVIOUS):
        with open(run / name, "r+b") as f:
            f.truncate(100)
    before = _snapshot(run)
    assert cli(["meta-train", *ARGS, "--steps", "6", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{run / CHECKPOINT} is damaged" in err and "delete the run folder" in err
    assert _snapshot(run) == before


def test_damaged_metrics_stop_with_one_message(run4, tmp_path, capsys):
    run = _copy(run4, tmp_path)
    lines = (run / METRICS).read_text().splitlines()
    (run / METRICS).write_text("\n".join([lines[0], "{garbage", *lines[2:]]) + "\n")
    before = _snapshot(run)
    assert cli(["meta-train", *ARGS, "--steps", "6", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / METRICS}: damaged: line 2 is not a metrics line" in err and "Traceback" not in err
    assert _snapshot(run) == before


@pytest.mark.parametrize("config, message", [
    ({"recipe": "nope"}, "unknown recipe 'nope'"),
    ({"recipe": {"extends": "star", "nominal": {"name": "lion"}}}, "unknown nominal 'lion'"),
    ({"recipe": {"extends": "star", "network": {"widths": [3]}}}, "network 'mlp' has no argument 'widths'"),
    ({"recipe": {"extends": "star", "nomimal": None}}, "nomimal"),
    ({"estimator": {"name": "nes", "truncation": 10}}, "unknown estimator 'nes'"),
    ({"task": "nope"}, "unknown task 'nope'"),
    ({"task": {"name": "image_mlp", "dataset": "digits", "depth": 3}}, "task 'image_mlp' has no argument 'depth'"),
])
def test_invalid_config_creates_nothing(config, message, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"task": "digits_mlp", "horizon": 20, "estimator": {"truncation": 10}, **config}))
    out = tmp_path / "x"
    assert cli(["meta-train", "--config", str(path), "--out", str(out), "--no-progress"]) == 2  # compile cache on
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


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


HOLDER = textwrap.dedent("""
    import sys, time
    from lofw.runtime.locks import folder_lock
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def _hold(folder: Path) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_busy_run_folder_exits_2_naming_the_holder(tmp_path, capsys):
    from lofw.runtime.locks import lock_holder

    out = tmp_path / "run"
    holder = _hold(out)
    try:
        assert lock_holder(out) == holder.pid
        assert cli(["meta-train", *ARGS, "--steps", "4", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"in use by process {holder.pid}" in err and "Traceback" not in err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    finally:
        holder.kill()
        holder.wait()
    assert lock_holder(out) is None  # the lock died with its process


def test_second_ablate_skips_cells_held_by_another_process(tmp_path, fakes):  # noqa: F811
    loaded = _grid(tmp_path)
    out = tmp_path / "out"
    held = loaded.cells[1]
    holder = _hold(cell_dir(out, held.id))
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
