"""Cost of one inner training step under a learned optimizer, relative to Adam.

The harness is a minimal Adam step, so that the ratio measures the optimizer
and nothing else both sides pay for: the 784-128-128-10 ReLU MLP (the paper's
Fashion-MNIST task) at batch 128; every batch (uniform inputs, random labels)
is generated and on the device before timing; 200 steps run in one jitted
``lax.scan`` whose body holds only the forward/backward pass and the update.
Each optimizer is compiled once, run once to warm up, then timed ``repeats``
times; the median is reported as milliseconds per step and as a ratio to
``optax.adam`` measured in the same process. Wall-clock times on a shared
machine are noisy: the 1-minute load average is printed alongside, and the
ratio (both sides suffer the same load) is the number to read.

Run::

    python benchmarks/step_overhead.py [RECIPE ...] [--steps 200] [--repeats 7] [--json] [--xla OPTION=VALUE ...]

``--xla`` sets an XLA option of each timed program alone (Adam's too), for
example ``--xla xla_cpu_enable_fast_math=true --xla xla_cpu_prefer_vector_width=512``:
what the ``XLA_FLAGS`` environment variable does for the whole process.

With no recipes: ``star blackbox hyperparam star_stable``. Any registered recipe name
(for example ``star_small_blackbox``) can be given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import lofw

SIZES = (784, 128, 128, 10)
BATCH = 128
DEFAULT_RECIPES = ("star", "blackbox", "hyperparam", "star_stable")


def mlp_params(key, sizes=SIZES):
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.truncated_normal(k, -2, 2, (i, o)) / jnp.sqrt(i), "b": jnp.zeros(o)}
        for k, i, o in zip(keys, sizes[:-1], sizes[1:])
    ]


def loss_fn(params, x, y):
    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    logits = h @ params[-1]["w"] + params[-1]["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def make_batches(key, steps, batch=BATCH):
    kx, ky = jax.random.split(key)
    xs = jax.random.uniform(kx, (steps, batch, SIZES[0]), jnp.float32)
    ys = jax.random.randint(ky, (steps, batch), 0, SIZES[-1])
    return jax.block_until_ready((xs, ys))


def make_train(tx):
    """``train(params, xs, ys)``: one scan step per batch, nothing but the step."""

    def train(params, xs, ys):
        def step(carry, batch):
            params, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
            updates, state = tx.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), (xs, ys))
        return params, losses

    return jax.jit(train)


def time_optimizer(tx, batches, repeats, compiler_options=None):
    """``(median seconds per step, compile seconds)``; ``compiler_options``: XLA
    options of this one program (``--xla``), as ``jax.jit(...).lower().compile`` takes them."""
    params = mlp_params(jax.random.PRNGKey(0))
    steps = batches[0].shape[0]
    train = make_train(tx)
    t0 = time.perf_counter()
    compiled = train.lower(params, *batches).compile(compiler_options=compiler_options)
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(params, *batches))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(params, *batches))
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times), compile_s


def ratio_rows(recipes, time_one) -> dict[str, dict[str, float]]:
    """``optax.adam`` then each recipe's ``as_optax()``, each timed by ``time_one(tx) ->
    (seconds per step, compile seconds)``: ms per step, ratio to Adam, compile seconds."""
    adam, adam_compile = time_one(optax.adam(1e-3))
    rows = {"adam": {"ms_per_step": adam * 1e3, "ratio": 1.0, "compile_s": adam_compile}}
    for recipe in recipes:
        t, c = time_one(lofw.build(recipe).as_optax())
        rows[recipe] = {"ms_per_step": t * 1e3, "ratio": t / adam, "compile_s": c}
    return rows


def time_recipes(recipes, batches, repeats, compiler_options=None) -> dict[str, dict[str, float]]:
    """:func:`ratio_rows` on the harness: :func:`time_optimizer` of every optimizer on ``batches``."""
    return ratio_rows(recipes, lambda tx: time_optimizer(tx, batches, repeats, compiler_options))


def _xla_option(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    if not name or not value:
        raise SystemExit(f"--xla {text!r}: write OPTION=VALUE, e.g. xla_cpu_enable_fast_math=true")
    lowered = value.lower()
    if lowered in ("true", "false"):
        return name, lowered == "true"
    return name, int(value) if value.lstrip("-").isdigit() else value


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", default=list(DEFAULT_RECIPES), help="registered recipe names")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--xla", action="append", default=[], metavar="OPTION=VALUE",
                        help="an XLA option of every timed program, Adam's included (repeatable), e.g. "
                        "xla_cpu_enable_fast_math=true")
    args = parser.parse_args(argv)
    options = dict(_xla_option(o) for o in args.xla) or None

    batches = make_batches(jax.random.PRNGKey(1), args.steps)
    load_before = os.getloadavg()[0]
    rows = time_recipes(args.recipes, batches, args.repeats, options)
    result = {
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "cores": len(os.sched_getaffinity(0)),
        "steps": args.steps,
        "repeats": args.repeats,
        "xla_options": options or {},
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "optimizers": {k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in rows.items()},
    }
    if args.json:
        print(json.dumps(result))
        return result
    print(
        f"jax {result['jax']} on {result['device']} ({result['cores']} cores), {args.steps} steps x "
        f"{args.repeats} repeats, load average (1 min) {load_before:.2f} -> {os.getloadavg()[0]:.2f}"
        + (f", XLA options {options}" if options else "")
    )
    print(f"{'optimizer':<20} {'ms/step':>8} {'/ adam':>7} {'compile s':>9}")
    for name, row in rows.items():
        print(f"{name:<20} {row['ms_per_step']:8.3f} {row['ratio']:7.2f} {row['compile_s']:9.2f}")
    return result


if __name__ == "__main__":
    main()
