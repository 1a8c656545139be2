"""Cost of a mixture's meta-step against the sum of its members' single-task meta-steps.

A mixture of K tasks unrolls every member's estimator inside one compiled
meta-step (``lofw/meta/mixture.py``). Issue 18 asks that it cost about the
sum of the members' own meta-steps and that its compile time grow linearly
in K. For each K = 1 .. len(members), this script builds the mixture of the
first K members (equal weights, every member trained each meta-step, the
chance normalisation), and times, in the same process:

  compile_s        first call minus a steady call (tracing + XLA compile)
  meta_step_s      median steady meta-step
  singles_s        sum over the K members of their own single-task meta-step
                   (median steady, measured once per member)
  ratio            meta_step_s / singles_s (1 = exactly the sum)

Run::

    python benchmarks/mixture_step.py [--members digits_mlp,digits_mlp_ln,quadratic_family,digits_mlp_wide]
        [--recipe star_stable] [--particles 8] [--truncation 20] [--repeats 5]

These machines are shared and noisy: read the ratio, measured in one
process, rather than the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax

from lofw.meta.training import merge_overrides, setup_run
from lofw.registry import load_registry


def measure(task, args: argparse.Namespace, registry) -> tuple[float, float]:
    """``(compile_s, meta_step_s)`` of the run's meta-step on ``task`` (a name or a mixture)."""
    config = merge_overrides(None, dict(
        recipe=args.recipe, task=task, horizon=10 * args.truncation, meta_steps=10**6,
        estimator={"name": "pes", "particles": args.particles, "truncation": args.truncation},
    ))
    run = setup_run(config, registry)
    state = run.initial_state
    t0 = time.perf_counter()
    state, metrics = run.meta_step(state, run.task)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        state, metrics = run.meta_step(state, run.task)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    steady = statistics.median(times)
    return first - steady, steady


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="digits_mlp,digits_mlp_ln,quadratic_family,digits_mlp_wide")
    parser.add_argument("--recipe", default="star_stable")
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--truncation", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    registry = load_registry()
    members = args.members.split(",")
    single = {name: measure(name, args, registry)[1] for name in members}
    rows = []
    for k in range(1, len(members) + 1):
        mixture = {"mixture": [{"task": name} for name in members[:k]]}
        compile_s, step_s = measure(mixture, args, registry)
        singles = sum(single[name] for name in members[:k])
        rows.append({"members": k, "tasks": members[:k], "compile_s": round(compile_s, 2),
                     "meta_step_s": round(step_s, 4), "singles_s": round(singles, 4),
                     "ratio": round(step_s / singles, 3)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"recipe": args.recipe, "particles": args.particles, "truncation": args.truncation,
                      "single_meta_step_s": {k: round(v, 4) for k, v in single.items()},
                      "load_average_1min": round(os.getloadavg()[0], 2)}))
    return rows


if __name__ == "__main__":
    main()
