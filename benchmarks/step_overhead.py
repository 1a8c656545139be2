"""Cost of one inner training step under a learned optimizer, relative to Adam.

The 784-128-128-10 ReLU MLP at batch 128 (the paper's Fashion-MNIST task,
synthetic inputs), 200 steps in one ``lax.scan``, timed after compilation;
the median of several repeats, printed as a ratio to ``optax.adam`` measured
in the same process. Run::

    python benchmarks/step_overhead.py [--steps 200] [--repeats 7] [--recipes star blackbox]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import lofw


def mlp_params(key, sizes=(784, 128, 128, 10)):
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


def make_train(tx, steps, batch=128):
    def train(params, key):
        def step(carry, k):
            params, state = carry
            kx, ky = jax.random.split(k)
            x = jax.random.uniform(kx, (batch, 784))
            y = jax.random.randint(ky, (batch,), 0, 10)
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, state = tx.update(grads, state, params, value=loss)
            return (optax.apply_updates(params, updates), state), loss

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, steps))
        return params, losses

    return jax.jit(train)


def time_optimizer(tx, steps, repeats):
    params = mlp_params(jax.random.PRNGKey(0))
    train = make_train(tx, steps)
    t0 = time.perf_counter()
    jax.block_until_ready(train(params, jax.random.PRNGKey(1)))
    compile_s = time.perf_counter() - t0
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(train(params, jax.random.PRNGKey(2 + r)))
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times), compile_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--recipes", nargs="+", default=["blackbox", "star"])
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.steps} steps x {args.repeats} repeats")
    adam, adam_compile = time_optimizer(optax.adam(1e-3), args.steps, args.repeats)
    print(f"{'optimizer':<12} {'ms/step':>8} {'ratio':>6} {'compile s':>9}")
    print(f"{'adam':<12} {adam * 1e3:8.3f} {1.0:6.2f} {adam_compile:9.2f}")
    for recipe in args.recipes:
        t, c = time_optimizer(lofw.build(recipe).as_optax(), args.steps, args.repeats)
        print(f"{recipe:<12} {t * 1e3:8.3f} {t / adam:6.2f} {c:9.2f}")


if __name__ == "__main__":
    main()
