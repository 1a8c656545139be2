"""Do lofw's optimizers pass the optimization test every optax optimizer passes?

optax's ``alias_test.test_optimization`` runs each optimizer for 10000 steps
on a parabola (from ``[-1, 10, 1]`` to ``[1, -1, 1]``) and the Rosenbrock
function (from ``[0, 0]`` to ``[1, 1]``) and requires the parameters to end
within ``rtol = atol = 3e-2`` of the minimiser (the tasks
``optax_parabola`` and ``optax_rosenbrock``,
``plugins/task/test_functions.py``). This script runs that test, as a user's
optax loop would (``opt.as_optax()``, ``optax.apply_updates``), for any
sources of ``lofw evaluate`` and for Adam at optax's learning rate (0.1 on
both), and prints the final parameters, loss and verdict.

Run::

    python benchmarks/optax_tests.py [SOURCE ...] [--steps 10000] [--json]

SOURCE: ``pretrained:NAME``, a run or grid cell folder, a recipe (default:
every shipped pretrained optimizer).
"""

from __future__ import annotations

import argparse
import json

import jax
import numpy as np
import optax

from lofw.evaluation.sources import resolve_source
from lofw.pretrained_loader import registered
from lofw.tasks import build_task
from lofw_plugins.task.test_functions import solved

PROBLEMS = ("optax_parabola", "optax_rosenbrock")


def run(tx: optax.GradientTransformation, task, steps: int) -> np.ndarray:
    """The parameters after ``steps`` steps of ``tx`` on ``task``, in one compiled scan."""

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jax.grad(task.loss)(params, {}), state, params)
        return (optax.apply_updates(params, updates), state), None

    params = task.init(jax.random.PRNGKey(0))
    (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, length=steps))((params, tx.init(params)))
    return np.asarray(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", help="default: every shipped pretrained optimizer")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sources = args.sources or [f"pretrained:{name}" for name in sorted(registered())]
    optimizers = {"adam(0.1)": optax.adam(0.1)}
    for source in sources:
        resolved = resolve_source(source)
        optimizers[resolved.label] = resolved.optimizer.as_optax()
    rows = []
    for problem in PROBLEMS:
        task = build_task(problem)
        for name, tx in optimizers.items():
            params = run(tx, task, args.steps)
            rows.append({"problem": problem, "optimizer": name, "params": [round(float(x), 4) for x in params],
                         "loss": float(task.loss(params, {})), "solved": solved(task, params)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"| problem | optimizer | final parameters ({args.steps} steps) | loss | solved |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['problem']} | {r['optimizer']} | {r['params']} | {r['loss']:.3g} | {'yes' if r['solved'] else 'no'} |")


if __name__ == "__main__":
    main()
