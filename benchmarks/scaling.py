"""Particle-steps per second of the meta-step on 1, 2, 4, 8 devices.

The meta-step of ``lofw.meta_train`` (PES by default, every particle, both
antithetic branches, the full truncation, clip + AdamW) with the particle
axis sharded over a mesh of ``D`` devices (:mod:`lofw.runtime.distributed`), the
same total number of particles for every ``D`` (strong scaling). Each
device count runs in its own subprocess: on CPU the devices are forced
host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=D``),
where an accelerator is present its real devices are used (counts above
what exists are skipped).

A particle-step is one inner step of one particle (both antithetic
branches for PES/ES), as in the reference's "particle-step" and in
``benchmarks/meta_step.py``.

Forced host devices share the machine's cores: with ``C`` cores the
speedup over one device is bounded by about ``C`` divided by the cores one
device already keeps busy (column ``cores busy``: CPU seconds per wall
second of a steady meta-step), whatever ``D`` is.

Run::

    python benchmarks/scaling.py [--devices 1 2 4 8] [--recipe star] [--task digits_mlp]
        [--estimator pes] [--particles 8] [--truncation 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def measure(args: argparse.Namespace, devices: int) -> dict:
    """In this process: steady meta-step time with ``devices`` devices."""
    import jax

    from lofw.meta.training import merge_overrides, setup_run
    from lofw.registry import load_registry
    from lofw.runtime import distributed

    config = merge_overrides(None, dict(
        recipe=args.recipe, task=args.task, horizon=args.horizon, meta_steps=10**6,
        estimator={"name": args.estimator, "particles": args.particles, "truncation": args.truncation},
    ))
    run = setup_run(config, load_registry())
    mesh = distributed.make_mesh(devices)
    state = distributed.shard_training_state(run.initial_state, mesh)
    task = distributed.replicate(run.task, mesh)
    t0 = time.perf_counter()
    state, metrics = run.meta_step(state, task)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        state, metrics = run.meta_step(state, task)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    steady = statistics.median(times)
    return {
        "devices": devices,
        "platform": jax.devices()[0].platform,
        "device_kind": jax.devices()[0].device_kind,
        "first_call_s": round(first, 2),
        "meta_step_s": round(steady, 4),
        "particle_steps_per_s": round(args.particles * args.truncation / steady, 1),
        # CPU seconds per wall second of a steady meta-step: the cores it kept busy
        "cores_busy": round(statistics.median(cpu) / steady, 2),
        "meta_loss": float(metrics["meta_loss"]),
    }


def _accelerator_count() -> int:
    """Real non-CPU devices, probed in a subprocess (0 when only a CPU)."""
    code = "import jax; d = jax.devices(); print(0 if d[0].platform == 'cpu' else len(d))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--recipe", default="star")
    parser.add_argument("--task", default="digits_mlp")
    parser.add_argument("--estimator", default="pes")
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--truncation", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print("RESULT " + json.dumps(measure(args, args.child)), flush=True)
        return []

    accelerators = _accelerator_count()
    rows = []
    for d in args.devices:
        if accelerators and d > accelerators:
            print(f"skip {d} devices: only {accelerators} present", file=sys.stderr)
            continue
        if args.particles % d:
            print(f"skip {d} devices: {args.particles} particles do not divide evenly", file=sys.stderr)
            continue
        env = dict(os.environ)
        if not accelerators:
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={d}".strip()
            env["JAX_PLATFORMS"] = "cpu"
        child = [a for a in (argv if argv is not None else sys.argv[1:])]
        proc = subprocess.run([sys.executable, __file__, *child, "--child", str(d)], env=env, capture_output=True, text=True)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(proc.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"{d} devices: the measurement failed")
        rows.append(json.loads(lines[0][len("RESULT "):]))
    base = rows[0]["particle_steps_per_s"] if rows else 1.0
    cores = len(os.sched_getaffinity(0))
    print(f"{args.recipe} / {args.task} / {args.estimator}: {args.particles} particles, truncation {args.truncation}; "
          f"{cores} CPU cores, load average {os.getloadavg()[0]:.2f}")
    print(f"{'devices':>8} {'platform':>9} {'meta-step s':>12} {'particle-steps/s':>17} {'speedup':>8} {'ideal':>6} {'cores busy':>11}")
    for r in rows:
        r["speedup"] = round(r["particle_steps_per_s"] / base, 2)
        print(f"{r['devices']:>8} {r['platform']:>9} {r['meta_step_s']:>12.4f} {r['particle_steps_per_s']:>17.1f} "
              f"{r['speedup']:>8.2f} {r['devices'] / rows[0]['devices']:>6.1f} {r['cores_busy']:>11.2f}")
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
