"""lofw's XLA options: LLVM level 1 on CPU, and XLA's fast-math only when opted in."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lofw
from lofw.evaluation.curves import seed_keys, train_curves
from lofw.meta.config import MetaTrainConfig
from lofw.meta.run_writer import RunWriter
from lofw.runtime.compile import FAST_MATH_ENV, compiler_options
from lofw.tasks import build_task

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are CPU's (None elsewhere)")


def test_fast_math_is_opt_in(monkeypatch):
    monkeypatch.delenv(FAST_MATH_ENV, raising=False)
    assert compiler_options() == {"xla_backend_optimization_level": 1}
    for off in ("0", "", "no"):
        monkeypatch.setenv(FAST_MATH_ENV, off)
        assert "xla_cpu_enable_fast_math" not in compiler_options()
    monkeypatch.setenv(FAST_MATH_ENV, "1")
    assert compiler_options() == {"xla_backend_optimization_level": 1, "xla_cpu_enable_fast_math": True}


def _star_run(options):
    """20 STAR steps on a 64x32 matrix and a bias, compiled with ``options``."""
    tx = lofw.build("star").as_optax()
    key = jax.random.PRNGKey(0)
    params = {"w": jax.random.normal(key, (64, 32)), "b": jnp.zeros(32)}

    def run(params):
        def body(carry, k):
            p, s = carry
            grads = jax.tree.map(lambda x: jax.random.normal(k, x.shape) + 0.1 * x, p)
            updates, s = tx.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), None

        (p, _), _ = jax.lax.scan(body, (params, tx.init(params)), jax.random.split(key, 20))
        return p

    return params, jax.jit(run).lower(params).compile(compiler_options=options)(params)


def test_fast_math_takes_effect_and_changes_only_the_last_bits(monkeypatch):
    monkeypatch.delenv(FAST_MATH_ENV, raising=False)
    start, plain = _star_run(compiler_options())
    monkeypatch.setenv(FAST_MATH_ENV, "1")
    _, fast = _star_run(compiler_options())
    w0, w, w_fast = (np.asarray(t["w"]) for t in (start, plain, fast))
    assert not np.array_equal(w, w_fast)   # the option reached XLA
    # measured 3.2e-6 of the largest parameter change over 20 steps
    assert np.abs(w - w_fast).max() < 1e-4 * np.abs(w - w0).max()


def test_lofw_programs_follow_the_setting(monkeypatch):
    # evaluation goes through lofw.runtime.compile.compiled, rebuilt when the options change
    opt, task, keys = lofw.build("star"), build_task("digits_mlp"), seed_keys(0, 2)
    monkeypatch.delenv(FAST_MATH_ENV, raising=False)
    plain = np.asarray(train_curves(opt, task, keys, steps=30))
    monkeypatch.setenv(FAST_MATH_ENV, "1")
    fast = np.asarray(train_curves(opt, task, keys, steps=30))
    monkeypatch.delenv(FAST_MATH_ENV)
    assert np.array_equal(np.asarray(train_curves(opt, task, keys, steps=30)), plain)
    assert not np.array_equal(plain, fast)
    np.testing.assert_allclose(fast, plain, rtol=1e-3)


def test_a_run_says_when_it_used_fast_math(monkeypatch, tmp_path):
    writer = RunWriter(tmp_path, MetaTrainConfig(), [], particles=8, start=0)
    monkeypatch.delenv(FAST_MATH_ENV, raising=False)
    writer.status("running", 3)
    assert "fast_math" not in json.loads((tmp_path / "status.json").read_text())
    monkeypatch.setenv(FAST_MATH_ENV, "1")
    writer.status("running", 4)
    assert json.loads((tmp_path / "status.json").read_text())["fast_math"] is True
