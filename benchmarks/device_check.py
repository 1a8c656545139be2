"""The prepared accelerator check: step ratios against Adam and PES meta-step times, in one run.

Where a session is lent a device, this one script (under 10 minutes on one
GPU) prints what issue 20 asks of it; on a CPU it runs the same code, so it is
tested here with ``--quick``. Three parts, each in this process:

1. **Harness steps** (:mod:`step_overhead`): the 784-128-128-10 ReLU MLP on
   pre-generated batches, 200 steps in one ``lax.scan`` holding only the
   forward/backward pass and the update; ms per step of ``optax.adam`` and of
   each recipe's ``as_optax()``, and their ratio, at batch 128 and 1024.
2. **Task steps** (:mod:`task_step`): the same shape as a lofw task
   (``ImageMLP`` on synthetic uint8 images of Fashion-MNIST's shape, so the
   step includes lofw's input scaling and loss), Adam against each recipe, at
   batch 128 and 1024.
3. **PES meta-steps** (:mod:`meta_step`): the paper's protocol (that task at
   batch 128, truncation 50, 8 particles, horizon 2000) with ``star``
   (``--meta-recipe``): one
   run's meta-step alone (``make_meta_step``) and a population of P members
   as one vmapped program (:func:`lofw.meta.population.make_population_step`),
   with the time per member. Compile time is reported apart.

Run::

    python benchmarks/device_check.py [--out results.json] [--quick]

``--quick`` shrinks everything (2 steps, batch 8 and 16, 2 particles,
truncation 2, populations of 2) to check the script itself. The device, the
JAX version and every setting are in the JSON, which is also written to
``--out`` (default ``$OUT/device_check.json`` when ``$OUT`` is set).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import lofw
from lofw.meta.checkpoint import TrainingState
from lofw.meta.config import OuterConfig
from lofw.meta.meta_step import make_meta_step
from lofw.meta.outer import make_outer_optimizer
from lofw.meta.population import make_population_step, stack

HERE = Path(__file__).resolve().parent
RECIPES = ("star", "blackbox", "hyperparam")


def _sibling(name: str):
    """The benchmark script ``benchmarks/NAME.py`` as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass fields (meta_step's ClassVar) look their module up
    spec.loader.exec_module(module)
    return module


step_bench = _sibling("step_overhead")
task_bench = _sibling("task_step")
meta_bench = _sibling("meta_step")


def harness_rows(recipes, batch: int, steps: int, repeats: int) -> dict:
    batches = step_bench.make_batches(jax.random.PRNGKey(1), steps, batch=batch)
    return step_bench.time_recipes(recipes, batches, repeats)


def image_task(batch: int, hidden=(128, 128), images: int = 4096):
    return meta_bench.ImageMLP(meta_bench.SyntheticImages(n=images), hidden_sizes=hidden, batch_size=batch)


def task_rows(recipes, batch: int, steps: int, repeats: int, hidden) -> dict:
    task = image_task(batch, hidden)

    def time_one(tx) -> tuple[float, float]:
        timed = task_bench.time_task(task, tx, steps, repeats)
        return timed["step_s"], timed["compile_s"]

    return step_bench.ratio_rows(recipes, time_one)


def _timed(call, repeats: int) -> tuple[float, float]:
    """``(compile seconds, median steady seconds)`` of ``call()`` (which blocks)."""
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    steady = statistics.median(times)
    return max(0.0, first - steady), steady


def meta_step_rows(recipe: str, batch: int, particles: int, truncation: int, populations, repeats: int,
                   hidden) -> dict:
    task = image_task(batch, hidden)
    estimator = meta_bench.ESTIMATORS["pes"](truncation=truncation, particles=particles, horizon=2000)
    opt = lofw.build(recipe, key=jax.random.PRNGKey(0))
    config = OuterConfig(lr=1e-4, clip=1.0)
    outer = make_outer_optimizer(config)

    def fresh(seed: int) -> TrainingState:
        return meta_bench.initial_state(opt, estimator, outer, task, seed=seed)[0]

    first, static = meta_bench.initial_state(opt, estimator, outer, task, seed=0)
    alone = make_meta_step(estimator, outer, static)
    state = [first]

    def run_alone():
        state[0], metrics = alone(state[0], task)
        jax.block_until_ready(metrics)

    compile_s, steady = _timed(run_alone, repeats)
    rows = {"alone": {"members": 1, "meta_step_s": steady, "s_per_member": steady, "compile_s": compile_s}}
    step = make_population_step(estimator, config, static)
    for size in populations:
        states = [stack([fresh(i) for i in range(size)])]
        lrs = jnp.full((size,), config.lr, jnp.float32)
        decays = jnp.full((size,), config.weight_decay, jnp.float32)
        active = jnp.ones((size,), bool)

        def run_population(states=states, lrs=lrs, decays=decays, active=active):
            states[0], metrics = step(states[0], lrs, decays, active, task)
            jax.block_until_ready(metrics)

        compile_s, steady = _timed(run_population, repeats)
        rows[f"population_{size}"] = {"members": size, "meta_step_s": steady, "s_per_member": steady / size,
                                      "compile_s": compile_s}
    for row in rows.values():
        row["per_member_vs_alone"] = row["s_per_member"] / rows["alone"]["s_per_member"]
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), help="recipes timed against Adam")
    parser.add_argument("--meta-recipe", default="star", help="the recipe of the PES meta-step part")
    parser.add_argument("--out", default=None, help="also write the JSON here (default $OUT/device_check.json)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the script, not the device")
    args = parser.parse_args(argv)
    if args.quick:
        steps, repeats, batches, particles, truncation, populations, hidden = 2, 1, (8, 16), 2, 2, (2,), (8,)
    else:
        steps, repeats, batches, particles, truncation, populations, hidden = 200, 5, (128, 1024), 8, 50, (4, 8), (128, 128)
    started = time.perf_counter()
    result = {
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "platform": jax.devices()[0].platform,
        "cores": len(os.sched_getaffinity(0)),
        "settings": {"steps": steps, "repeats": repeats, "batches": list(batches), "particles": particles,
                     "truncation": truncation, "populations": list(populations), "hidden": list(hidden)},
        "harness": {}, "task": {},
    }
    out = args.out or (os.path.join(os.environ["OUT"], "device_check.json") if os.environ.get("OUT") else None)
    print(f"jax {result['jax']} on {result['device']}; {json.dumps(result['settings'])}", flush=True)

    def done(line: str) -> None:  # each part is printed and saved as it ends: a run cut short keeps them
        result["wall_s"] = time.perf_counter() - started
        print(line, flush=True)
        if out:
            Path(out).write_text(json.dumps(result, indent=2) + "\n")

    for batch in batches:
        for part, measure in (("harness", harness_rows), ("task", lambda *a: task_rows(*a, hidden))):
            rows = result[part][str(batch)] = measure(args.recipes, batch, steps, repeats)
            done(f"{part:<8} batch {batch:>5}: "
                 + "  ".join(f"{name} {row['ms_per_step']:.3f} ms ({row['ratio']:.2f}x)" for name, row in rows.items()))
    result["meta_step"] = meta_step_rows(args.meta_recipe, batches[0], particles, truncation, populations, repeats, hidden)
    done("\n".join(f"meta-step {name:<14} {row['meta_step_s']:.4f} s, {row['s_per_member']:.4f} s per member "
                   f"({row['per_member_vs_alone']:.2f}x alone), compile {row['compile_s']:.1f} s"
                   for name, row in result["meta_step"].items()))
    done(f"wall {result['wall_s']:.0f} s\n{json.dumps(result)}")
    return result


if __name__ == "__main__":
    main()
