"""lofw.runtime.distributed: particles sharded over devices and processes give the same
meta-gradient and meta-steps as one device (to float tolerance).

Each case runs in a fresh subprocess, because the number of host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``) and
``jax.distributed`` must be fixed before JAX starts. The reference is the
unsharded computation (no mesh at all) of the same seeds.

Task: the noisy quadratic model with the NQM's dense preconditioner
(compiles in seconds), PES with 8 particles, horizon 10, truncation 5, so
the two meta-steps below include episode resets.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from forced_devices import forced_devices_env

ROOT = Path(__file__).resolve().parents[1]

#: Runs in a subprocess: argv = devices (0 = no mesh) [coordinator nprocs pid].
WORKER = textwrap.dedent(
    """
    import json, sys
    import equinox as eqx, jax, numpy as np
    from lofw.runtime import distributed as D
    from lofw.meta.training import merge_overrides, setup_run
    from lofw.registry import load_registry

    devices = int(sys.argv[1])
    if len(sys.argv) > 2:
        D.initialize(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    config = merge_overrides(None, dict(
        recipe={"optimizer": "dense_preconditioner", "dim": 2, "alpha": 0.1}, task="nqm",
        estimator={"name": "pes", "truncation": 5, "particles": 8, "std": 0.1}, horizon=10, meta_steps=2, seed=3))
    run = setup_run(config, load_registry())
    state, task = run.initial_state, run.task
    if devices:
        mesh = D.make_mesh("all" if devices == -1 else devices)
        state, task = D.shard_training_state(state, mesh), D.replicate(task, mesh)

    @eqx.filter_jit
    def meta_gradient(state, task):
        opt = eqx.combine(state.theta, run.static)
        grad, _ = run.estimator.estimate(opt, task, state.estimator_state, jax.random.fold_in(state.key, state.step))
        return grad

    out = {}
    if devices > 0 and jax.process_count() == 1:
        out["collectives"] = D.collectives(run.meta_step.lower(state, task).compile().compiled.as_text())
    out["grad"] = [np.asarray(x).tolist() for x in jax.tree_util.tree_leaves(D.to_host(meta_gradient(state, task)))]
    losses = []
    for _ in range(2):
        state, metrics = run.meta_step(state, task)
        losses.append(float(D.to_host(metrics)["meta_loss"]))
    host = D.to_host(state)
    out["theta"] = [np.asarray(x).tolist() for x in jax.tree_util.tree_leaves(host.theta)]
    out["particles"] = [np.asarray(x).tolist() for x in jax.tree_util.tree_leaves(host.estimator_state)]
    out["meta_loss"] = losses
    out["devices"] = jax.device_count()
    out["sharded"] = [str(getattr(x.sharding, "spec", None)) for x in jax.tree_util.tree_leaves(state.estimator_state)][:1]
    if D.is_writer():
        print("RESULT " + json.dumps(out))
    """
)


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, stdout
    return json.loads(lines[0][len("RESULT "):])


def _run(devices: int, host_devices: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(devices)], env=forced_devices_env(host_devices), cwd=ROOT,
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _result(proc.stdout)


def _close(a: dict, b: dict) -> None:
    for key in ("grad", "theta", "particles", "meta_loss"):
        assert len(a[key]) == len(b[key])
        for x, y in zip(a[key], b[key]):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=1e-6, err_msg=key)


@pytest.fixture(scope="module")
def reference() -> dict:
    """No mesh, one device."""
    return _run(0, 1)


def test_four_devices_match_one(reference):
    sharded = _run(4, 4)
    assert sharded["devices"] == 4 and sharded["sharded"] == ["P('particles',)"]
    _close(reference, sharded)
    # One compiled meta-step: the particle mean is an all-reduce; the particle
    # state is never gathered or moved between devices.
    ops = sharded["collectives"]
    assert ops["all-reduce"] >= 1, ops
    assert ops["all-gather"] == ops["all-to-all"] == ops["collective-permute"] == 0, ops
    # The reference is not trivially equal to anything: the gradient is non-zero.
    assert max(abs(v) for leaf in reference["grad"] for v in np.ravel(leaf)) > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_over_loopback_match_one(reference):
    """Two real processes (2 host devices each, a 4-device global mesh) joined
    by jax.distributed on 127.0.0.1; CPU collectives (gloo) do the mean."""
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, "-1", address, "2", str(i)], env=forced_devices_env(2), cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=300))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert "RESULT" not in outputs[1][0]  # only process 0 reports (is_writer)
    result = _result(outputs[0][0])
    assert result["devices"] == 4
    _close(reference, result)


def test_indivisible_particles_name_both_numbers():
    code = textwrap.dedent(
        """
        import jax.numpy as jnp
        from lofw.runtime import distributed as D
        from lofw.errors import ConfigError
        try:
            D.shard_particles({"x": jnp.zeros((6, 2))}, D.make_mesh(4))
        except ConfigError as e:
            print("ERROR", e)
        try:
            D.make_mesh(5)
        except ConfigError as e:
            print("ERROR", e)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env=forced_devices_env(4), cwd=ROOT, capture_output=True, text=True, timeout=120)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 2, proc.stdout + proc.stderr
    assert "6 particles do not divide evenly across 4 devices" in errors[0]
    assert "asked for 5 devices, but 4 are available" in errors[1]


def test_partial_distributed_flags_are_refused():
    from lofw.errors import ConfigError
    from lofw.runtime import distributed as D

    with pytest.raises(ConfigError, match="missing --process-id"):
        D.initialize("127.0.0.1:1234", 2, None)
