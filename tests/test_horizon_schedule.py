"""Sampled episode lengths: the log-uniform law, the estimators' resets, and PES kept exact.

PES is checked as in ``tests/test_estimators.py`` (Gauss-Hermite quadrature
of the smoothed meta-loss, on the quadratic with a learned log learning
rate), with particles grouped by the episode length each one drew: every
group's mean estimate must equal the smoothed gradient of its own length.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_estimators import SIGMA, THETA, Quadratic, ScalarLR, assert_matches, smoothed_gradient

import lofw
from lofw.meta.config import MetaTrainConfig, build_estimator
from lofw.registry import load_registry
from lofw_plugins.estimator import PES, TBPTT
from lofw_plugins.schedule import LogUniform


def test_log_uniform_lengths_follow_the_law_and_stay_in_bounds():
    schedule = LogUniform(min=100)
    lengths = np.asarray(jax.vmap(lambda k: schedule.sample(k, 2003, 50))(jax.random.split(jax.random.PRNGKey(0), 40000)))
    assert lengths.min() >= 100 and lengths.max() <= 2003  # 2003 % 50 != 0: any integer length
    for x in (200, 500, 1000):  # P(L <= x) = ln(x / 100) / ln(20.03), up to the rounding
        expected = math.log(x / 100) / math.log(2003 / 100)
        assert abs((lengths <= x).mean() - expected) < 0.01


def test_on_the_fast_path_every_length_is_a_multiple_of_the_truncation():
    lengths = np.asarray(jax.vmap(lambda k: LogUniform(min=100, max=1000).sample(k, 2000, 50))(
        jax.random.split(jax.random.PRNGKey(1), 5000)))
    assert set(np.unique(lengths % 50)) == {0}
    assert lengths.min() == 100 and lengths.max() == 1000


def test_episodes_reset_at_their_own_lengths_and_draw_new_ones():
    opt, task = ScalarLR(jnp.float32(THETA)), Quadratic()
    pes = PES(truncation=5, particles=64, horizon=40, std=SIGMA, stagger=False, schedule=LogUniform(min=5))
    state = pes.init(opt, task, jax.random.PRNGKey(0))
    lengths = np.asarray(state.branches.length[:, 0])
    assert set(np.unique(lengths % 5)) == {0} and len(np.unique(lengths)) > 3
    step = jax.jit(lambda s, k: pes.particle_gradients(opt, task, s, k))
    ends, renewed = lengths.copy(), set()
    for call in range(1, 9):  # each episode ends after its own length, and the next one draws its own
        out = step(state, jax.random.PRNGKey(call))
        ended = np.asarray(out.resets) > 0
        np.testing.assert_array_equal(ended, ends == 5 * call)
        new = np.asarray(out.state.branches.length[:, 0])
        renewed |= set(new[ended].tolist())
        ends = np.where(ended, 5 * call + new, ends)
        state = out.state
    assert len(renewed) > 3


def test_pes_stays_exact_across_resets_of_different_lengths():
    """T=3, lengths 5 or 6 (horizon 7: not a multiple of 3, so any integer length).

    Length 5 ends inside truncation 1 and length 6 at its end; truncation 2
    continues episode 2 (length 5) or starts it fresh (length 6).
    """
    T = 3
    pes = PES(truncation=T, particles=40000, horizon=7, std=SIGMA, stagger=False, schedule=LogUniform(min=5, max=6))
    opt, task = ScalarLR(jnp.float32(THETA)), Quadratic()
    state = pes.init(opt, task, jax.random.PRNGKey(0))
    lengths = np.asarray(state.branches.length[:, 0])
    assert set(np.unique(lengths)) == {5, 6}
    step = jax.jit(lambda s, k: pes.particle_gradients(opt, task, s, k))
    for k in range(3):
        out = step(state, jax.random.PRNGKey(k + 1))
        samples = np.asarray(out.gradient.log_lr, np.float64)
        for length in (5, 6):
            expected = smoothed_gradient(0 if (length == 6 and k == 2) else k, T, length)
            assert_matches(samples[lengths == length], expected, f"PES truncation {k}, length {length}")
        state = out.state


def test_constant_schedule_keeps_the_inner_state_and_the_fingerprint_of_a_constant_horizon():
    config = MetaTrainConfig(recipe="star", task="digits_mlp", horizon=200, estimator={"truncation": 50})
    assert config.trajectory_fingerprint() == MetaTrainConfig(
        recipe="star", task="digits_mlp", horizon=200, estimator={"truncation": 50},
        horizon_schedule="constant").trajectory_fingerprint()
    # the fingerprint of a run fingerprinted before horizon_schedule existed (lofw at 4a4dae6)
    assert MetaTrainConfig().trajectory_fingerprint() == "d52444630385f295"
    sampled = config.model_copy(update={"horizon_schedule": {"name": "log_uniform", "min": 50}})
    assert sampled.trajectory_fingerprint() != config.trajectory_fingerprint()
    estimator = build_estimator(sampled, load_registry())
    assert isinstance(estimator.schedule, LogUniform) and build_estimator(config, load_registry()).schedule is None


@pytest.mark.parametrize(("schedule", "message"), [
    ({"name": "log_uniform", "min": 300, "max": 100}, "min (300) exceeds max (100)"),
    ({"name": "log_uniform", "min": 10}, "min (10) is shorter than the truncation (50)"),
    ({"name": "log_uniform", "min": 50, "max": 400}, "max (400) exceeds the run's horizon (200)"),
    ({"name": "log_uniform", "min": 0}, "episode lengths must be positive"),
    ({"name": "sometimes"}, "unknown schedule 'sometimes'"),
    ({"min": 5}, "missing `name`"),
])
def test_bad_schedules_are_one_located_config_error(schedule, message):
    config = MetaTrainConfig(recipe="star", task="digits_mlp", horizon=200, horizon_schedule=schedule)
    with pytest.raises(lofw.ConfigError, match="horizon_schedule") as e:
        build_estimator(config, load_registry())
    assert message in str(e.value)


def test_an_estimator_without_a_schedule_argument_is_refused_with_a_sampled_schedule(monkeypatch):
    class Fixed(TBPTT):
        def __init__(self, truncation: int = 50, particles: int = 8, horizon: int = 2000):
            super().__init__(truncation, particles, horizon)

    monkeypatch.setattr("lofw.meta.config.components", lambda kind: {"fixed": Fixed} if kind == "estimator"
                        else lofw.components(kind))
    config = MetaTrainConfig(recipe="star", task="digits_mlp", horizon=200, estimator={"name": "fixed"},
                             horizon_schedule={"name": "log_uniform", "min": 50})
    with pytest.raises(lofw.ConfigError, match="estimator 'fixed' takes no horizon schedule"):
        build_estimator(config, load_registry())


def test_constant_has_one_spelling():
    spelled = MetaTrainConfig(horizon_schedule={"name": "constant"})
    assert spelled.horizon_schedule == "constant"
    assert spelled.trajectory_fingerprint() == MetaTrainConfig().trajectory_fingerprint()
