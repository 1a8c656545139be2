"""Cost of one inner training step of each offline generalisation task, Adam vs STAR.

For each task, ``--steps`` batches are drawn before timing (stacked on
device), then one jitted ``lax.scan`` runs that many steps of
``value_and_grad(task.loss)`` and the optimizer update. Compilation is timed
apart; the step time is the median over ``--repeats`` runs divided by the
number of steps. STAR is ``lofw.build("star").as_optax()`` with its initial
meta-parameters. Run::

    python benchmarks/task_step.py [--tasks digits_mlp_ln ...] [--steps 200] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import optax

import lofw
from lofw.tasks import build_task

OFFLINE_TASKS = ("digits_mlp_ln", "digits_resnet", "python_lstm", "python_transformer")


def make_train(task, tx):
    """``train(params, batches) -> (params, losses)``: one scan over the stacked batches."""

    def train(params, batches):
        def step(carry, batch):
            params, state = carry
            loss, grads = jax.value_and_grad(task.loss)(params, batch)
            updates, state = tx.update(grads, state, params, value=loss)
            return (optax.apply_updates(params, updates), state), loss

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), batches)
        return params, losses

    return jax.jit(train)


def time_task(task, tx, steps: int, repeats: int) -> dict[str, float]:
    """Median seconds per step, compile seconds and the last run's final loss."""
    params = task.init(jax.random.key(0))
    batches = jax.block_until_ready(jax.vmap(task.sample_batch)(jax.random.split(jax.random.key(1), steps)))
    train = make_train(task, tx)
    t0 = time.perf_counter()
    compiled = train.lower(params, batches).compile()
    compile_s = time.perf_counter() - t0
    times, losses = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, losses = jax.block_until_ready(compiled(params, batches))
        times.append((time.perf_counter() - t0) / steps)
    return {"step_s": statistics.median(times), "compile_s": compile_s, "final_loss": float(losses[-1])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(OFFLINE_TASKS))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    rows = []
    for name in args.tasks:
        task = build_task(name)
        n_params = sum(x.size for x in jax.tree.leaves(task.init(jax.random.key(0))))
        adam = time_task(task, optax.adam(args.learning_rate), args.steps, args.repeats)
        star = time_task(task, lofw.build("star").as_optax(), args.steps, args.repeats)
        rows.append({"task": name, "params": n_params, "adam": adam, "star": star,
                     "ratio": star["step_s"] / adam["step_s"]})
    meta = {"jax": jax.__version__, "platform": jax.devices()[0].platform, "steps": args.steps,
            "repeats": args.repeats}
    if args.json:
        print(json.dumps({**meta, "rows": rows}, indent=2))
        return
    print(f"jax {meta['jax']} on {meta['platform']}, {args.steps} steps x {args.repeats} repeats (median)")
    print(f"{'task':<20} {'params':>8} {'adam ms':>8} {'star ms':>8} {'ratio':>6} {'adam 2000 s':>11} {'compile s':>9}")
    for r in rows:
        print(f"{r['task']:<20} {r['params']:8d} {r['adam']['step_s'] * 1e3:8.3f} {r['star']['step_s'] * 1e3:8.3f} "
              f"{r['ratio']:6.2f} {r['adam']['step_s'] * 2000:11.1f} {r['adam']['compile_s']:9.1f}")


if __name__ == "__main__":
    main()
