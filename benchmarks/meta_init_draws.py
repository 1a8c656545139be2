"""How often a random meta-initialisation makes an untrained optimizer blow up.

For each of ``--draws`` meta-initialisation keys (``lofw.build(recipe,
key=PRNGKey(i))``), one fresh digits MLP (the same instance and batches for
every draw) takes ``--steps`` steps with the untrained optimizer; a draw is
*bad* when the training loss after its first update is above ``--threshold``
(5, about twice the chance loss ln 10). Prints, per recipe, the number of bad
draws, and the median and largest loss after one and after all steps. Run::

    python benchmarks/meta_init_draws.py [--draws 100] [--steps 10] [--recipes star ...] [--json]

The numbers in docs/meta_init.md come from this script.
"""

from __future__ import annotations

import argparse
import json

import equinox as eqx
import jax
import numpy as np

import lofw
from lofw.tasks import build_task

RECIPES = ("star", "blackbox", "hyperparam", "star_small_blackbox", "star_zero_direction")


@eqx.filter_jit
def losses(opt, task, key, steps):
    """Training loss before each of ``steps + 1`` updates, one fixed task instance."""
    k_init, k_data = jax.random.split(key)
    params = task.init(k_init)

    def body(carry, k):
        params, state = carry
        loss, grads = jax.value_and_grad(task.loss)(params, task.sample_batch(k))
        updates, state = opt.update(grads, state, params)
        return (jax.tree_util.tree_map(lambda p, u: p + u, params, updates), state), loss

    return jax.lax.scan(body, (params, opt.init(params)), jax.random.split(k_data, steps + 1))[1]


def study(recipe: str, draws: int, steps: int, threshold: float, task) -> dict:
    curves = np.stack([
        np.asarray(losses(lofw.build(recipe, key=jax.random.PRNGKey(i)), task, jax.random.PRNGKey(12345), steps))
        for i in range(draws)
    ])
    first, last = curves[:, 1], curves[:, -1]
    bad = ~np.isfinite(first) | (first > threshold)
    return {
        "recipe": recipe, "draws": draws, "bad": int(bad.sum()), "initial_loss": float(curves[0, 0]),
        "median_after_1": float(np.nanmedian(first)), "max_after_1": float(np.nanmax(first)),
        f"median_after_{steps}": float(np.nanmedian(last)), f"max_after_{steps}": float(np.nanmax(last)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=5.0)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--task", default="digits_mlp")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    task = build_task(args.task)
    results = [study(r, args.draws, args.steps, args.threshold, task) for r in args.recipes]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.task}: untrained optimizers, {args.draws} meta-initialisations each; "
          f"bad = loss after the first update > {args.threshold:g}")
    for r in results:
        print(f"{r['recipe']:<22} bad {r['bad']:>3}/{r['draws']}  loss at init {r['initial_loss']:.3f}  after 1 step: "
              f"median {r['median_after_1']:.3g}, max {r['max_after_1']:.3g}  after {args.steps}: "
              f"median {r[f'median_after_{args.steps}']:.3g}, max {r[f'max_after_{args.steps}']:.3g}")


if __name__ == "__main__":
    main()
