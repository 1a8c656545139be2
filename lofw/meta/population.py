"""Populations: several meta-training runs of one program as ONE vmapped program.

A grid's cells often differ only in numbers the program does not depend on
structurally: the meta-seed, the outer learning rate, the outer weight decay.
:func:`meta_train_population` meta-trains such runs (its *members*) together:
their :class:`~lofw.meta.checkpoint.TrainingState` are stacked on a leading
axis, and one compiled function vmaps :func:`lofw.meta.meta_step.meta_step_body`
over them, each member with its own learning rate and weight decay (traced
scalars of the outer optimizer, :func:`lofw.meta.outer.make_outer_optimizer`)
and its own PRNG key. One compilation and one stream of kernels serve every
member, which is where the time goes for small tasks.

Each member stays a run of its own: its folder, ``metrics.jsonl``,
checkpoints, status and lock are exactly those of
:func:`lofw.meta.training.meta_train` on its config (written by the same
:class:`lofw.meta.run_writer.RunWriter`), so a member resumes alone or in
another population, and a run started alone can join one. Its numbers equal
those of the run alone up to float rounding (vmapped reductions may sum in
another order; ``tests/test_population.py`` measures it). Members may start
at different steps and end at different ``meta_steps``: a member with nothing
left to do is masked (its state is carried through unchanged; it still costs
its share of the program). A member whose meta-parameters become non-finite
is checkpointed at its last finite state and marked ``failed``; the others go
on.

Members must agree on everything but :data:`MEMBER_FIELDS` (and the
fields outside the trajectory, ``meta_steps`` and ``checkpoint_every``).
Mixtures are not population members: vmapping a mixture's
``lax.cond`` over members would train every member task at every meta-step
and lose the point of its ``subset``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from lofw.errors import ConfigError, RunFailed
from lofw.interfaces.estimator import AbstractEstimator
from lofw.interfaces.task import AbstractTask
from lofw.meta.checkpoint import TrainingState
from lofw.meta.config import NON_TRAJECTORY_FIELDS, MetaTrainConfig, OuterConfig
from lofw.meta.meta_step import meta_step_body
from lofw.meta.mixture import parse_mixture
from lofw.meta.outer import make_outer_optimizer
from lofw.meta.run_writer import RunWriter, to_host
from lofw.meta.training import MetaTrainResult, Run, merge_overrides, resume_state, run_dir_lock, setup_run
from lofw.registry import Registry, load_registry
from lofw.runtime.compile import compiler_options

#: The config fields in which the members of a population may differ.
MEMBER_FIELDS = ("seed", "outer.lr", "outer.weight_decay")


def population_key(config: MetaTrainConfig) -> str:
    """A hash of every trajectory field but :data:`MEMBER_FIELDS`: runs with one key can share a program."""
    data = config.model_dump(mode="json", exclude=set(NON_TRAJECTORY_FIELDS))
    for field in MEMBER_FIELDS:
        *parents, name = field.split(".")
        node = data
        for parent in parents:
            node = node[parent]
        node.pop(name)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def can_join(config: MetaTrainConfig, registry: Registry) -> bool:
    """False for runs that are never population members (a mixture task)."""
    return parse_mixture(config.task, registry) is None


def _check_members(configs: Sequence[MetaTrainConfig], run_dirs: Sequence[Path | None], registry: Registry) -> None:
    if not configs:
        raise ConfigError("meta_train_population: no members; give at least one config")
    for i, config in enumerate(configs):
        if not can_join(config, registry):
            raise ConfigError(f"meta_train_population: member {i}: a mixture task ({config.task!r}) cannot be a "
                              "population member; meta-train it alone with meta_train")
    first = configs[0].model_dump(mode="json", exclude=set(NON_TRAJECTORY_FIELDS))
    for i, config in enumerate(configs[1:], start=1):
        if population_key(config) == population_key(configs[0]):
            continue
        data = config.model_dump(mode="json", exclude=set(NON_TRAJECTORY_FIELDS))
        differ = sorted(_differences(first, data))
        allowed = ", ".join(MEMBER_FIELDS)
        raise ConfigError(f"meta_train_population: member {i} differs from member 0 in {', '.join(differ)}; "
                          f"members may differ only in {allowed} (and meta_steps, checkpoint_every)")
    folders = [Path(d).resolve() for d in run_dirs if d is not None]
    if len(set(folders)) != len(folders):
        raise ConfigError("meta_train_population: two members have one run folder; give each its own `out`")


def _differences(a: Any, b: Any, prefix: str = "") -> set[str]:
    """Dotted keys where the config dumps ``a`` and ``b`` differ, leaving out :data:`MEMBER_FIELDS`."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for key in set(a) | set(b):
            out |= _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    name = prefix.rstrip(".")
    return set() if a == b or name in MEMBER_FIELDS else {name}


def make_population_step(estimator: AbstractEstimator, outer_config: OuterConfig, static: Any) -> Callable:
    """``step(states, lrs, weight_decays, active, task) -> (states, metrics)``: one meta-step of
    every member as ONE compiled function; a member with ``active`` False keeps its state."""

    def one(state: TrainingState, lr, weight_decay, active, task: AbstractTask):
        outer = make_outer_optimizer(outer_config, lr=lr, weight_decay=weight_decay)
        new, metrics = meta_step_body(estimator, outer, static, state, task)
        new = jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new, state)
        return new, metrics

    @eqx.filter_jit(compiler_options=compiler_options())
    def step(states: TrainingState, lrs, weight_decays, active, task: AbstractTask):
        return jax.vmap(one, in_axes=(0, 0, 0, 0, None))(states, lrs, weight_decays, active, task)

    return step


def stack(trees: Sequence[Any]) -> Any:
    """The pytrees ``trees`` (of one structure) stacked on a new leading axis."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def member(tree: Any, i: int) -> Any:
    """Member ``i`` of a stacked pytree."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def meta_train_population(
    configs: Sequence[MetaTrainConfig | dict[str, Any]],
    /,
    *,
    outs: Sequence[str | Path | None] | None = None,
    registry: Registry | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> list[MetaTrainResult]:
    """Meta-train the runs ``configs`` as one population (module docstring).

    Args:
        configs: the members' run configs (:class:`MetaTrainConfig` or
            mappings); they may differ only in :data:`MEMBER_FIELDS`,
            ``meta_steps`` and ``checkpoint_every``.
        outs: each member's run folder (None: in memory), as ``out`` of
            :func:`lofw.meta.training.meta_train`; a folder that holds the
            member's run is resumed. None: every member in memory.
        registry, progress, stop_after: as :func:`lofw.meta.training.meta_train`
            (``stop_after`` counts the meta-steps of each member in this call).

    Returns:
        One :class:`MetaTrainResult` per member, in order. A member whose
        meta-parameters became non-finite has status ``"failed"``, the error
        in ``warning`` and the optimizer of its last finite state (its folder
        says ``failed``, as a run alone would); the others are unaffected.

    Raises:
        ConfigError: members that may not share a program (the message names
            the fields that differ), a mixture member, two members with one
            folder, or any error :func:`meta_train` raises for a member's
            config (before anything is compiled or written).
        KeyboardInterrupt: re-raised after every member is checkpointed.
    """
    registry = registry if registry is not None else load_registry()
    configs = [merge_overrides(c, {}) for c in configs]
    run_dirs = [None] * len(configs) if outs is None else [Path(o) if o is not None else None for o in outs]
    if len(run_dirs) != len(configs):
        raise ConfigError(f"meta_train_population: {len(configs)} configs but {len(run_dirs)} outs")
    _check_members(configs, run_dirs, registry)
    if jax.process_count() > 1:
        raise ConfigError("meta_train_population: one process only (a population's state is not shared between "
                          "processes); meta-train each run with meta_train(..., devices=...)")
    runs = [setup_run(c, registry) for c in configs]
    for i, run in enumerate(runs[1:], start=1):
        if not eqx.tree_equal(run.static, runs[0].static):
            raise ConfigError(f"meta_train_population: member {i}'s optimizer differs from member 0's in a part "
                              "that is not a meta-parameter (its recipe builds seed-dependent static parts); "
                              "meta-train it alone with meta_train")
    with contextlib.ExitStack() as locks:
        for run_dir in run_dirs:
            locks.enter_context(run_dir_lock(run_dir))
        resumed = [resume_state(run, run_dir) for run, run_dir in zip(runs, run_dirs)]
        return _population_loop(runs, resumed, run_dirs, progress, stop_after)


def _population_loop(runs: list[Run], resumed: list, run_dirs: list[Path | None], progress: bool,
                     stop_after: int | None) -> list[MetaTrainResult]:
    first = runs[0]
    step_fn = _cached_population_step(first.estimator, first.config.outer, first.static)
    states = stack([state for state, _ in resumed])
    starts = [int(state.step) for state, _ in resumed]
    ends = [r.config.meta_steps if stop_after is None else min(r.config.meta_steps, s + stop_after)
            for r, s in zip(runs, starts)]
    lrs = jnp.asarray([r.config.outer.lr for r in runs], jnp.float32)
    weight_decays = jnp.asarray([r.config.outer.weight_decay for r in runs], jnp.float32)
    writers = [RunWriter(d, r.config, metrics, s, r.particles_per_step)
               for r, (_, metrics), d, s in zip(runs, resumed, run_dirs, starts)]
    errors: dict[int, RunFailed] = {}  # members that failed: they stay at their last finite state
    ended: dict[int, tuple[str, str | None]] = {}  # members done for this call: (status, warning)

    def fail(i: int, state: TrainingState, error: RunFailed, checkpoint: bool | None = None) -> None:
        writers[i].failed(state, error, checkpoint=checkpoint)
        errors[i] = error

    bar = tqdm(total=max([0] + [e - s for s, e in zip(starts, ends)]), disable=not progress, file=sys.stderr,
               unit="meta-step", dynamic_ncols=True, desc=f"population of {len(runs)}")
    try:
        with contextlib.ExitStack() as files:
            for writer in writers:
                files.enter_context(writer)
            while True:
                steps = [int(s) for s in jax.device_get(states.step)]
                for i in range(len(runs)):  # a member at its end is finished now, not when the others are
                    if i not in errors and i not in ended and steps[i] >= ends[i]:
                        try:
                            ended[i] = writers[i].finish(member(states, i))
                        except RunFailed as e:  # (finish has marked it failed)
                            errors[i] = e
                active = [i not in errors and i not in ended for i in range(len(runs))]
                if not any(active):
                    break
                new_states, metrics = step_fn(states, lrs, weight_decays, jnp.asarray(active), first.task)
                host = jax.device_get(metrics)
                failed = []
                for i in (i for i, a in enumerate(active) if a):
                    line = to_host({k: v[i] for k, v in host.items()}, steps[i] + 1)
                    try:
                        writers[i].record(line)
                    except RunFailed as e:  # member i stops at its last finite state; the others go on
                        fail(i, member(states, i), e)
                        failed.append(i)
                if failed:
                    index = jnp.asarray(failed)
                    new_states = jax.tree_util.tree_map(lambda n, o: n.at[index].set(o[index]), new_states, states)
                states = new_states
                for i in (i for i, a in enumerate(active) if a and i not in errors):
                    if (steps[i] + 1) % runs[i].config.checkpoint_every == 0 and run_dirs[i] is not None:
                        try:
                            writers[i].after_step(member(states, i))
                        except RunFailed as e:  # a write failed: nothing more is written for member i
                            fail(i, member(states, i), e, checkpoint=False)
                bar.set_postfix({f"m{i}": f"{writers[i].metrics[-1]['meta_loss']:.4f}"
                                 for i, a in enumerate(active) if a and i not in errors})
                bar.update(1)
    except KeyboardInterrupt:
        for i, writer in enumerate(writers):
            if i not in errors and i not in ended:
                writer.interrupted(member(states, i))
        raise
    finally:
        bar.close()
    results = []
    for i, (run, writer, run_dir) in enumerate(zip(runs, writers, run_dirs)):
        state = member(states, i)
        status, warning = ("failed", str(errors[i])) if i in errors else ended[i]
        results.append(MetaTrainResult(status=status, step=int(state.step), optimizer=eqx.combine(state.theta, run.static),
                                       config=run.config, run_dir=run_dir, metrics=writer.metrics, warning=warning))
    return results


_POPULATION_STEPS: dict[Any, Callable] = {}


def _cached_population_step(estimator: AbstractEstimator, outer_config: OuterConfig, static: Any) -> Callable:
    """:func:`make_population_step` memoised on its configuration (as
    :func:`lofw.meta.meta_step.cached_meta_step`); the members' own learning
    rates and weight decays are arguments, so they are not part of the key."""
    shared = outer_config.model_copy(update={"lr": 1.0, "weight_decay": 0.0})
    try:
        key = (estimator, shared, static)
        hash(key)
    except TypeError:
        return make_population_step(estimator, shared, static)
    if key not in _POPULATION_STEPS:
        _POPULATION_STEPS[key] = make_population_step(estimator, shared, static)
    return _POPULATION_STEPS[key]
