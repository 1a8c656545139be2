"""Where a learned optimizer's update spends its time: XLA kernels, slowest first.

The update alone (no forward/backward pass) runs ``steps`` times in one
jitted ``lax.scan`` on fixed gradients, under ``jax.profiler``; the trace's
kernel events (one per XLA fusion, dot or library call per step) are summed
and printed in microseconds per step, with the HLO of the slowest kernels'
fused computations summarised (op counts) so that a recomputed or
materialised value shows up: the per-element network loop, the
normalisation reduction and the accumulator updates are found this way
(docs/performance.md). Timings come from the profiler and are as noisy as the machine.

Run::

    python benchmarks/step_profile.py [RECIPE] [--shape 784x128 ...] [--top 12] [--ops 3]

With no ``--shape``: the parameter tensors of ``benchmarks/step_overhead.py``'s
784-128-128-10 MLP. ``optax.adam`` can be profiled as the recipe ``adam``.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import lofw

MLP_SHAPES = ((784, 128), (128,), (128, 128), (128,), (128, 10), (10,))
#: Trace events that are not kernels: Python frames, executors, waits.
NOT_KERNELS = re.compile(r"^\$|Thunk|^while|Pjit|PjRt|ThreadPool|^end:|^Allocate")


def parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.split("x") if d)


def make_run(tx, params, grads, steps):
    def run(params):
        def step(carry, _):
            p, s = carry
            u, s = tx.update(grads, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, tx.init(params)), None, length=steps)[0][0]

    return jax.jit(run)


def kernel_times(run, params, steps) -> tuple[dict[str, float], int]:
    """``({kernel: us per step}, kernels launched per step)`` from one profiled call."""
    jax.block_until_ready(run(params))  # compile and warm up outside the trace
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            jax.block_until_ready(run(params))
        (trace,) = Path(trace_dir).rglob("*.trace.json.gz")
        events = json.load(gzip.open(trace))["traceEvents"]
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and not NOT_KERNELS.search(e["name"]):
            total[e["name"]] += e.get("dur", 0) / steps
            count[e["name"]] += 1
    return dict(total), round(sum(count.values()) / steps)


def fused_op_counts(hlo: str, kernel: str, top: int = 8) -> str:
    """The most frequent HLO ops in ``kernel``'s fused computation, with its output shape."""
    line = re.search(r"\n\s*(?:ROOT )?%" + re.escape(kernel) + r" = ([^\n]*)", hlo)
    if line is None:
        return ""
    shape = line.group(1).split(" fusion(")[0].split(" custom-call(")[0][:60]
    called = re.search(r"calls=(%[\w.\-]+)", line.group(1))
    if called is None:
        return shape
    body = re.search(re.escape(called.group(1)) + r" \(.*?\n\}", hlo, re.S)
    ops = collections.Counter(re.findall(r"= \w+\[[^\]]*\][^ ]* (\w+)\(", body.group(0) if body else ""))
    skip = {"parameter", "bitcast", "broadcast", "slice", "constant"}
    counted = [f"{op} x{n}" for op, n in ops.most_common() if op not in skip][:top]
    return shape + "  " + ", ".join(counted)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="star", help="a registered recipe, or adam")
    parser.add_argument("--shape", action="append", type=parse_shape, help="a parameter shape such as 784x128 (repeatable)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--top", type=int, default=12, help="kernels to print")
    parser.add_argument("--ops", type=int, default=3, help="of those, how many to describe by their HLO ops")
    args = parser.parse_args(argv)

    shapes = args.shape or list(MLP_SHAPES)
    params = [jnp.full(s, 0.1, jnp.float32) for s in shapes]
    keys = jax.random.split(jax.random.PRNGKey(0), len(shapes))
    grads = [1e-2 * jax.random.normal(k, s) for k, s in zip(keys, shapes)]
    tx = optax.adam(1e-3) if args.recipe == "adam" else lofw.build(args.recipe).as_optax()
    run = make_run(tx, params, grads, args.steps)
    times, launched = kernel_times(run, params, args.steps)
    hlo = run.lower(params).compile().as_text()
    slowest = sorted(times.items(), key=lambda kv: -kv[1])
    print(
        f"{args.recipe} on {' '.join('x'.join(map(str, s)) or 'scalar' for s in shapes)}: "
        f"{sum(times.values()):.0f} us of kernels per step, {launched} kernels launched per step"
    )
    for i, (name, us) in enumerate(slowest[: args.top]):
        ops = fused_op_counts(hlo, name) if i < args.ops else ""
        print(f"{us:9.1f} us  {name:<32} {ops}")
    return {"recipe": args.recipe, "kernels_us_per_step": dict(slowest), "launched_per_step": launched}


if __name__ == "__main__":
    main()
