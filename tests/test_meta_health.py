"""Meta-training that fails loudly: non-finite meta-parameters stop the run (exit 3); a dead
meta-gradient is counted in every metrics line and named in the last line and the grid report."""

from __future__ import annotations

import json

import pytest
from run_helpers import META_TRAIN_ARGS

import lofw
from lofw.cli.main import main as cli
from lofw.meta.checkpoint import CHECKPOINT, METRICS, STATUS
from lofw.meta.health import DEAD_STEPS, check_finite, dead_steps, dead_warning, is_dead


def test_a_step_is_dead_when_its_gradient_is_zero_or_every_particle_diverged():
    assert is_dead({"grad_norm": 0.0, "diverged": 0}, particles=8)
    assert is_dead({"grad_norm": 0.3, "diverged": 8}, particles=8)
    assert not is_dead({"grad_norm": 1e-30, "diverged": 7}, particles=8)
    streak = 0
    for line, expected in zip([{"grad_norm": 0.0}] * 3 + [{"grad_norm": 1.0}, {"grad_norm": 0.0}], [1, 2, 3, 0, 1]):
        streak = dead_steps(streak, line, 8)
        assert streak == expected
    assert dead_warning(DEAD_STEPS - 1, 50) is None
    assert "the last 10 meta-steps (since step 41)" in dead_warning(10, 50)
    check_finite({"step": 3, "theta_norm": 1e30, "grad_norm": 1.0})
    with pytest.raises(lofw.RunFailed, match="meta-step 3: the meta-parameters became non-finite.*keeps step 2"):
        check_finite({"step": 3, "theta_norm": float("nan"), "grad_norm": 1.0})


def _lines(run):
    return [json.loads(x) for x in (run / METRICS).read_text().splitlines()]


def test_non_finite_meta_parameters_stop_the_run_with_exit_3(tmp_path, capsys):
    run = tmp_path / "run"
    # an outer step of 1e38 overflows float32 on the first update
    assert cli(["meta-train", *META_TRAIN_ARGS, "--lr", "1e38", "--steps", "5", "--out", str(run)]) == 3
    err = capsys.readouterr().err
    assert "failed: meta-step 1: the meta-parameters became non-finite" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    status = json.loads((run / STATUS).read_text())
    assert status["status"] == "failed" and status["step"] == 0 and "non-finite" in status["error"]
    assert (run / METRICS).read_text() == ""  # no line of the failed step
    assert not (run / CHECKPOINT).exists()  # step 0 is the config's own initial state


def test_a_dead_run_says_so_in_its_metrics_status_and_last_line_and_resumes_exactly(tmp_path, capsys):
    run, whole = tmp_path / "run", tmp_path / "whole"
    # an outer learning rate of 10: every inner run diverges from the second meta-step on, the gradient is 0
    dead = [*META_TRAIN_ARGS, "--lr", "10", "--weight-decay", "0.01", "--particles", "2"]
    assert cli(["meta-train", *dead, "--steps", "30", "--stop-after", "13", "--out", str(run)]) == 0
    assert cli(["meta-train", *dead, "--steps", "30", "--out", str(run)]) == 0
    err = capsys.readouterr().err
    lines = _lines(run)
    streak = lines[-1]["dead_steps"]
    assert streak >= DEAD_STEPS and all(x["grad_norm"] == 0.0 or x["diverged"] == 2 for x in lines[-streak:])
    assert "finished: 30/30 meta-steps" in err and f"warning: not learning: the last {streak} meta-steps" in err
    assert json.loads((run / STATUS).read_text())["dead_steps"] == streak
    assert json.loads((run / "config.json").read_text())["config"]["outer"]["weight_decay"] == 0.01
    assert cli(["meta-train", *dead, "--steps", "30", "--out", str(whole)]) == 0
    assert _lines(run) == _lines(whole)  # the streak is carried across the resume
    result = lofw.meta_train(recipe="star", task="digits_mlp", meta_steps=30, horizon=20, out=whole, progress=False,
                             estimator={"truncation": 10, "particles": 2}, outer={"lr": 10.0, "weight_decay": 0.01})
    assert result.warning == dead_warning(streak, 30) and "warning='not learning" in repr(result)


def test_a_full_disk_names_the_file_keeps_the_last_checkpoint_and_marks_the_run_failed(tmp_path, monkeypatch, capsys):
    import errno
    import os

    from lofw.meta.checkpoint import read_checkpoint_header

    run = tmp_path / "run"
    fsync = os.fsync
    writes = {"checkpoints": 0}

    def full_after_one_checkpoint(fd):  # the disk fills up after the first checkpoint (step 2)
        if ".checkpoint.eqx" in os.readlink(f"/proc/self/fd/{fd}"):
            writes["checkpoints"] += 1
            if writes["checkpoints"] > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr("lofw.runtime.disk.os.fsync", full_after_one_checkpoint)
    assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", "6", "--out", str(run)]) == 3
    err = capsys.readouterr().err
    assert "No space left on device" in err and CHECKPOINT in err and len(err.strip().splitlines()) == 1
    status = json.loads((run / STATUS).read_text())
    assert status["status"] == "failed" and "No space left on device" in status["error"]
    assert read_checkpoint_header(run)["step"] == 2  # the last good checkpoint, intact
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr("lofw.runtime.disk.os.fsync", fsync)  # space again: the rerun resumes from step 2
    assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", "6", "--out", str(run)]) == 0
    assert cli(["meta-train", *META_TRAIN_ARGS, "--steps", "6", "--out", str(tmp_path / "whole")]) == 0
    assert _lines(run) == _lines(tmp_path / "whole")


@pytest.mark.parametrize("argv", [["--help"], ["meta-train", "--help"], ["ablate", "--help"]])
def test_the_exit_statuses_are_in_every_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli(argv)
    assert e.value.code == 0
    text = capsys.readouterr().out
    for line in ("exit status:", "  0    success", "  2    bad input", "  3    a run failed", "  130  interrupted"):
        assert line in text
