"""Meta-training run folders survive damage and concurrency: a damaged checkpoint falls back
to the previous one or stops with one message; damaged metrics stop with one message;
nothing is created before the config is valid; one writer per run folder (real processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from run_helpers import META_TRAIN_ARGS, hold_lock

import lofw
from lofw.cli.main import main as cli
from lofw.meta.checkpoint import CHECKPOINT, METRICS, PREVIOUS, STATUS
from lofw.runtime.locks import lock_holder


def _copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("tensorboard"))
    return tmp_path / "run"


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_previous_checkpoint_is_kept_and_a_damaged_latest_falls_back(run4, tmp_path, capsys):
    run = _copy(run4, tmp_path)
    assert json.loads(run.joinpath(CHECKPOINT).read_bytes().splitlines()[0])["step"] == 4
    assert json.loads(run.joinpath(PREVIOUS).read_bytes().splitlines()[0])["step"] == 2
    with open(run / CHECKPOINT, "r+b") as f:
        f.truncate(100)
    with pytest.warns(UserWarning, match=r"checkpoint.eqx is damaged .*resumed from checkpoint.prev.eqx \(meta-step 2\)"):
        assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", "4", "--out", str(run)]) == 0
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
    assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", "6", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{run / CHECKPOINT} is damaged" in err and "delete the run folder" in err
    assert _snapshot(run) == before


def test_damaged_metrics_stop_with_one_message(run4, tmp_path, capsys):
    run = _copy(run4, tmp_path)
    lines = (run / METRICS).read_text().splitlines()
    (run / METRICS).write_text("\n".join([lines[0], "{garbage", *lines[2:]]) + "\n")
    before = _snapshot(run)
    assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", "6", "--out", str(run)]) == 2
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


def test_busy_run_folder_exits_2_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    holder = hold_lock(out)
    try:
        assert lock_holder(out) == holder.pid
        assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", "4", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"in use by process {holder.pid}" in err and "Traceback" not in err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    finally:
        holder.kill()
        holder.wait()
    assert lock_holder(out) is None  # the lock died with its process


@pytest.mark.parametrize("key, value", [("outer", {"lr": float("inf")}), ("outer", {"weight_decay": float("inf")}),
                                        ("estimator", {"std": float("-inf")}), ("outer", {"lr": float("nan")})])
def test_non_finite_numbers_are_refused_naming_the_field(key, value, tmp_path):
    field = f"{key}.{next(iter(value))}"
    with pytest.raises(lofw.ConfigError, match=rf"{field}: Input should be a finite number"):
        lofw.meta_train(recipe="star", task="digits_mlp", meta_steps=1, out=tmp_path / "x", progress=False,
                        **{key: value})
    assert not (tmp_path / "x").exists()


def test_infinite_flag_and_non_utf8_files_exit_2_with_one_line(tmp_path, capsys):
    out = tmp_path / "x"
    assert cli(["meta-train", *META_TRAIN_ARGS, "--lr", "inf", "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "outer.lr: Input should be a finite number" in err and len(err.strip().splitlines()) == 1
    config = tmp_path / "c.yaml"
    config.write_bytes(b"recipe: star\ntask: digits_mlp\n# caf\xe9\n")
    grid = tmp_path / "g.yaml"
    grid.write_bytes(b"name: g\nbase: {task: digits_mlp}\n\xff\n")
    for argv, path, byte in ((["meta-train", "--config", str(config)], config, 35), (["ablate", str(grid)], grid, 33)):
        assert cli([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{path}: not UTF-8 text (byte {byte}" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def _lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / METRICS).read_text().splitlines()]


@pytest.mark.parametrize("signal_name, environment", [("SIGTERM", {}), ("SIGUSR1", {"LOFW_STOP_SIGNALS": "USR1"})])
def test_a_stop_signal_checkpoints_and_the_run_resumes_exactly(signal_name, environment, tmp_path, capsys):
    run = tmp_path / "run"
    # no periodic checkpoint: the one on disk is written by the signal handler
    command = [sys.executable, "-m", "lofw.cli.main", "meta-train", *META_TRAIN_ARGS, "--steps", "500",
               "--checkpoint-every", "1000", "--out", str(run)]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, **environment})
    deadline = time.time() + 240
    while not ((run / METRICS).is_file() and len(_lines(run)) >= 2) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signal_name))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, signal_name), err
    assert f"stopped by {signal_name}" in err and "Traceback" not in err
    status = json.loads((run / STATUS).read_text())
    step = status["step"]
    assert status["status"] == "interrupted" and 2 <= step < 500
    assert json.loads((run / CHECKPOINT).read_bytes().splitlines()[0])["step"] == step
    # resumed to step + 2, it equals a run that was never interrupted
    assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", str(step + 2), "--out", str(run)]) == 0
    assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", str(step + 2), "--out", str(tmp_path / "whole")]) == 0
    assert _lines(run) == _lines(tmp_path / "whole")
    assert (run / CHECKPOINT).read_bytes() == (tmp_path / "whole" / CHECKPOINT).read_bytes()


def test_an_unknown_stop_signal_name_is_one_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LOFW_STOP_SIGNALS", "USR9")
    assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "$LOFW_STOP_SIGNALS: unknown signal 'SIGUSR9'" in err and len(err.strip().splitlines()) == 1


def _refuses_new_files(folder: Path) -> bool:
    try:
        (folder / ".lofw-probe").open("x").close()
    except OSError:
        return folder.is_dir()
    (folder / ".lofw-probe").unlink()
    return False


@pytest.mark.parametrize("argv", [["meta-train", *META_TRAIN_ARGS, "--steps", "1"], ["ablate", "quickstart"],
                                  ["evaluate", "pretrained:star", "--steps", "5"],
                                  ["generalize", "star", "--suite", "fig4_offline"]])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(argv, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [(a_file / "out", f"{a_file} exists and is not a folder")]
    if _refuses_new_files(Path("/sys")):  # sysfs refuses new files, even to root (EACCES, or EROFS in a container)
        cases.append((Path("/sys/lofw_test_out/out"), "cannot write in /sys: "))
    for out, reason in cases:
        assert cli([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--out {out}: {reason}" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
