"""Compile time and speed of one meta-step.

PES with a learned optimizer (default STAR) on the 784-128-128-10 ReLU MLP,
batch 128, on synthetic data of Fashion-MNIST's shape (uint8 28x28x1, ten
classes; no download needed), 8 particles, truncation 50: the whole
meta-step of ``lofw.meta_train`` (``make_meta_step``: both antithetic
branches of every particle, the full truncation, clip + AdamW).

Reported:
  compile_s              first call minus a steady call (tracing + XLA compile)
  compile_cpu_s          the CPU seconds of that (mostly one core)
  particle_steps         inner steps per meta-step: particles * branches *
                         truncation, where PES and ES run two antithetic
                         branches per particle (``particles`` counts pairs)
                         and TBPTT one; one antithetic branch is one particle
  ms_per_particle_step   steady meta-step time / particle_steps: one inner
                         training step of one branch, everything of the
                         meta-step included (goal: <= 2 ms on 2 cores)
  ms_per_antithetic_pair_step
                         the same per pair (both branches): the number older
                         versions of this script printed as ms_per_particle_step
  ms_per_particle_step_cpu_bound
                         CPU time of a steady meta-step / cores / particle_steps:
                         the idle-machine estimate when others share the cores

Run::

    python benchmarks/meta_step.py [--recipe star] [--particles 8] [--truncation 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import lofw
from lofw.meta.checkpoint import TrainingState
from lofw.meta.config import OuterConfig
from lofw.meta.meta_step import make_meta_step
from lofw.meta.outer import make_outer_optimizer
from lofw_plugins.dataset.image_dataset import AbstractImageDataset
from lofw_plugins.estimator import ES, PES, TBPTT
from lofw_plugins.task.image_mlp import ImageMLP


class SyntheticImages(AbstractImageDataset):
    """Random uint8 images of Fashion-MNIST's shape in every split."""

    images: dict
    labels: dict
    max_value: ClassVar[float] = 255.0
    num_classes: ClassVar[int] = 10

    def __init__(self, n: int = 4096, shape=(28, 28, 1), seed: int = 0):
        rng = np.random.default_rng(seed)
        splits = ("train", "inner_valid", "outer_valid", "test")
        self.images = {s: jnp.asarray(rng.integers(0, 256, (n, *shape), dtype=np.uint8)) for s in splits}
        self.labels = {s: jnp.asarray(rng.integers(0, 10, (n,), dtype=np.int32)) for s in splits}


ESTIMATORS = {"pes": PES, "es": ES, "tbptt": TBPTT}


def initial_state(opt, estimator, outer, task, seed: int | None = None) -> tuple[TrainingState, object]:
    """A fresh run's :class:`TrainingState` of ``opt`` and the optimizer's static part. Its
    estimator and run keys are ``PRNGKey(1)`` and ``PRNGKey(2)``, or split from ``PRNGKey(seed)``."""
    theta, static = eqx.partition(opt, eqx.is_inexact_array)
    if seed is None:
        k_est, k_run = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    else:
        k_est, k_run = jax.random.split(jax.random.PRNGKey(seed))
    state = TrainingState(theta, outer.init(theta), estimator.init(opt, task, k_est), k_run, jnp.zeros((), jnp.int32))
    return state, static


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="star")
    parser.add_argument("--estimator", default="pes", choices=sorted(ESTIMATORS))
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--truncation", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    task = ImageMLP(SyntheticImages(), hidden_sizes=(128, 128), batch_size=128)
    opt = lofw.build(args.recipe, key=jax.random.PRNGKey(0))
    estimator = ESTIMATORS[args.estimator](truncation=args.truncation, particles=args.particles, horizon=2000)
    outer = make_outer_optimizer(OuterConfig())
    state, static = initial_state(opt, estimator, outer, task)
    meta_step = make_meta_step(estimator, outer, static)

    t0, c0 = time.perf_counter(), time.process_time()
    state, metrics = meta_step(state, task)
    jax.block_until_ready(metrics)
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    times, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        state, metrics = meta_step(state, task)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    steady = statistics.median(times)
    cores = len(os.sched_getaffinity(0))
    branches = 2 if args.estimator in ("pes", "es") else 1
    particle_steps = args.particles * branches * args.truncation
    result = {
        "recipe": args.recipe,
        "estimator": args.estimator,
        "particles": args.particles,
        "truncation": args.truncation,
        "device": str(jax.devices()[0]),
        "compile_s": round(first - steady, 2),
        # CPU seconds of tracing + compiling (XLA compiles mostly on one core)
        "compile_cpu_s": round(first_cpu - statistics.median(cpu), 2),
        "meta_step_s": round(steady, 4),
        "definition": "particle-step = one inner step of one antithetic branch; "
        f"particle_steps = {args.particles} particles x {branches} branches x {args.truncation} steps",
        "particle_steps": particle_steps,
        "ms_per_particle_step": round(1e3 * steady / particle_steps, 3),
        "ms_per_antithetic_pair_step": round(1e3 * steady * branches / particle_steps, 3),
        "meta_loss": float(metrics["meta_loss"]),
        # CPU seconds used / cores: what the wall time would be on an idle
        # machine if the work spread over every core (a shared machine's
        # wall-clock numbers above include time spent waiting for a core)
        "cores": cores,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "ms_per_particle_step_cpu_bound": round(1e3 * statistics.median(cpu) / cores / particle_steps, 3),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
