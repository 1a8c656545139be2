"""Checkpoints: round trip, atomic replacement, refusal of a foreign folder."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lofw
from lofw.meta.checkpoint import (
    CHECKPOINT,
    TrainingState,
    atomic_write_bytes,
    load_checkpoint,
    prepare_run_dir,
    read_checkpoint_header,
    save_checkpoint,
)
from lofw.meta.config import MetaTrainConfig


def state(value):
    return TrainingState(
        theta={"a": jnp.full((3,), value, jnp.float32), "b": None},
        outer_state=(jnp.zeros((2,)), jnp.int32(4)),
        estimator_state={"step": jnp.arange(4, dtype=jnp.int32)},
        key=jax.random.PRNGKey(7),
        step=jnp.int32(value),
    )


def test_round_trip_is_exact(tmp_path):
    s = state(3)
    s = TrainingState(s.theta | {"a": jnp.asarray([0.1, -1e-30, np.pi], jnp.float32)}, s.outer_state, s.estimator_state, s.key, s.step)
    save_checkpoint(tmp_path, s, {"step": 3, "recipe": "star"})
    loaded, header = load_checkpoint(tmp_path, state(0))
    assert header["step"] == 3 and header["format"] == 1 and read_checkpoint_header(tmp_path)["recipe"] == "star"
    for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(s)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, state(1), {"step": 1})
    before = (tmp_path / CHECKPOINT).read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, state(2), {"step": 2})
    monkeypatch.undo()
    assert (tmp_path / CHECKPOINT).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]  # no temporary file left
    atomic_write_bytes(tmp_path / "x", b"1")
    assert (tmp_path / "x").read_bytes() == b"1"


def test_structure_mismatch_is_a_config_error(tmp_path):
    save_checkpoint(tmp_path, state(1), {"step": 1, "recipe": "blackbox"})
    other = state(0)
    other = TrainingState({"a": jnp.zeros((5,)), "b": None}, other.outer_state, other.estimator_state, other.key, other.step)
    with pytest.raises(lofw.ConfigError, match="written for recipe 'blackbox'") as error:
        load_checkpoint(tmp_path, other)
    assert str(error.value).endswith(f"To start this run over, delete {tmp_path}")


def test_prepare_run_dir_resumes_same_config_and_refuses_others(tmp_path):
    config = MetaTrainConfig(task="digits_mlp", horizon=100)
    assert prepare_run_dir(tmp_path / "r", config) is False
    save_checkpoint(tmp_path / "r", state(1), {"step": 1})
    # more meta-steps do not change the trajectory: same folder, resumed
    assert prepare_run_dir(tmp_path / "r", config.model_copy(update={"meta_steps": 9999})) is True
    with pytest.raises(lofw.ConfigError, match=r"horizon: 100 -> 200"):
        prepare_run_dir(tmp_path / "r", config.model_copy(update={"horizon": 200}))
