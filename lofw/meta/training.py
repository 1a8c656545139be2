"""``meta_train``: meta-train a learned optimizer on a task, resumably.

One meta-step (every particle, both antithetic branches, the whole
truncation, the outer clip + AdamW update) is one ``eqx.filter_jit``
function, :func:`lofw.meta.meta_step.make_meta_step`. The host loop around it draws nothing
random itself (the key of step ``n`` is ``fold_in(run_key, n)``), appends the
returned metrics to ``metrics.jsonl``, calls the ``lofw_log_metrics`` hook,
updates the progress bar and writes checkpoints.

Run folder (``out``)::

    config.json      the resolved MetaTrainConfig and its trajectory fingerprint
    metrics.jsonl    one JSON object per meta-step (format below)
    checkpoint.eqx   the latest checkpoint (lofw.meta.checkpoint; written atomically)
    status.json      {"status", "step", "meta_steps", "fingerprint"} (+ "fast_math": true
                     when LOFW_FAST_MATH was set, lofw.runtime.compile)

``metrics.jsonl`` lines (deterministic: a resumed run writes exactly the
lines an uninterrupted one would)::

    {"step": 12,              # meta-steps completed (1-based)
     "meta_loss": 1.73,       # mean over particles of the truncation's mean
                              # normalised training loss (PES/ES: mean of +/-)
     "grad_norm": 0.41,       # global norm of the meta-gradient, before clipping
     "nan_grads": 0,          # meta-gradient entries that were NaN/inf, zeroed
     "resets": 1,             # particles whose inner episode ended this step
     "diverged": 0,           # particles at the task's largest meta-loss for the whole truncation
     "theta_norm": 3.2,       # global norm of the meta-parameters after the update
     "dead_steps": 0}         # consecutive meta-steps ending here with a zero meta-gradient
                              # or every particle diverged (lofw.meta.health)

``status.json`` ``status`` is ``"running"`` while a process works on the
folder, ``"stopped"`` after ``stop_after`` steps, ``"interrupted"`` after
Ctrl-C (a checkpoint is written first), ``"finished"`` once ``meta_steps``
are done, ``"failed"`` when the meta-parameters became non-finite (the state
before that step is checkpointed; :class:`lofw.RunFailed` is raised) or a
file could not be written (:class:`lofw.errors.WriteFailed`; the last good
checkpoint is intact). A run ending with :data:`lofw.meta.health.DEAD_STEPS`
or more dead meta-steps also records ``"dead_steps"`` there. Calling
:func:`meta_train` again on the folder resumes from the checkpoint (a
finished run returns at once); a larger ``meta_steps`` continues a finished
run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from lofw.builder import build_optimizer
from lofw.errors import ConfigError, RunFailed, located
from lofw.interfaces.estimator import AbstractEstimator
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.interfaces.task import AbstractTask
from lofw.meta import health
from lofw.meta.checkpoint import TrainingState, load_checkpoint, prepare_run_dir, read_metrics, update_run_config
from lofw.meta.config import MetaTrainConfig, build_estimator, parse_meta_train_config, resolve_config
from lofw.meta.meta_step import cached_meta_step
from lofw.meta.mixture import loss_scale, make_mixture_meta_step, parse_mixture
from lofw.meta.outer import make_outer_optimizer
from lofw.meta.run_writer import RunWriter, to_host, writes
from lofw.registry import Registry, load_registry
from lofw.runtime import distributed
from lofw.runtime.locks import folder_lock
from lofw.tasks import build_task

Status = Literal["finished", "stopped", "interrupted", "failed"]


@dataclasses.dataclass(frozen=True)
class MetaTrainResult:
    """What :func:`meta_train` returns.

    Attributes:
        status: ``"finished"`` (all ``meta_steps`` done) or ``"stopped"``
            (``stop_after`` reached; call again to continue); ``"failed"``
            only for a member of a population whose meta-parameters became
            non-finite (:func:`lofw.meta.population.meta_train_population`;
            :func:`meta_train` raises :class:`lofw.RunFailed` instead).
        step: meta-steps completed so far (over every invocation).
        optimizer: the learned optimizer with the current meta-parameters.
        config: the resolved run configuration.
        run_dir: the run folder, or None for an in-memory run.
        metrics: every metrics line of the run so far (as in ``metrics.jsonl``).
        warning: None, or why the run is not learning
            (:func:`lofw.meta.health.dead_warning`).
    """

    status: Status
    step: int
    optimizer: AbstractOptimizer
    config: MetaTrainConfig
    run_dir: Path | None
    metrics: list[dict[str, Any]]
    warning: str | None = None

    def __repr__(self) -> str:  # the summary, not the optimizer's arrays and every metrics line
        last = self.metrics[-1]["meta_loss"] if self.metrics else None
        return (f"MetaTrainResult(status={self.status!r}, step={self.step}/{self.config.meta_steps}, "
                f"last meta_loss={last!r}, run_dir={self.run_dir!r}"
                + (f", warning={self.warning!r})" if self.warning else ")"))


def meta_train(
    config: MetaTrainConfig | dict[str, Any] | None = None,
    /,
    *,
    out: str | Path | None = None,
    registry: Registry | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    devices: str | int | None = None,
    **overrides: Any,
) -> MetaTrainResult:
    """Meta-train a learned optimizer (PES by default; paper Appendix B).

    Args:
        config: the run (:class:`MetaTrainConfig` or a mapping of its keys);
            None = defaults.
        out: the run folder. Created if absent; if it holds a run with the
            same trajectory fingerprint, that run is resumed; a run of a
            different config is refused (:class:`lofw.ConfigError`, nothing
            written). None = in-memory run: no files, no checkpoints.
        registry: where recipe, task and estimator names are looked up
            (default: the project's ``registry.yaml``).
        progress: show a tqdm progress bar (stderr) with the meta-loss and
            the speed.
        stop_after: run at most this many meta-steps in this call, then
            checkpoint and return with status ``"stopped"``.
        devices: shard the particles over a 1-D mesh of these devices
            (``"all"``, a count, see :func:`lofw.runtime.distributed.make_mesh`);
            None = no mesh (one device). With several processes
            (:func:`lofw.runtime.distributed.initialize`) the mesh spans every
            process, every process runs this function, and only process 0
            writes files (the others' result holds only this call's metrics). Not part of
            the config: a run may resume on another number of devices.
        **overrides: top-level keys of :class:`MetaTrainConfig` overriding
            ``config`` (``meta_train(recipe="star", task="digits_mlp",
            meta_steps=20, estimator={"particles": 4})``; a mapping given for
            ``estimator`` or ``outer`` is merged into the existing one).

    Returns:
        A :class:`MetaTrainResult`.

    Raises:
        ConfigError: unknown recipe / task / estimator, bad key or value,
            horizon shorter than the truncation, particles that do not divide
            evenly across ``devices``, or ``out`` holding a run of another
            config (all raised before anything is compiled or written).
        RunFailed: the meta-parameters became non-finite; the state before
            that meta-step is checkpointed and ``status.json`` says ``failed``.
            Its subclass :class:`lofw.errors.WriteFailed`: a file of the run
            could not be written (the last good checkpoint is intact).
        KeyboardInterrupt: re-raised after a checkpoint is written.
    """
    registry = registry if registry is not None else load_registry()
    config = merge_overrides(config, overrides)
    run = setup_run(config, registry)
    mesh = None
    if devices is not None:
        mesh = distributed.make_mesh(devices)
        distributed.check_divisible(run.config.estimator.particles, mesh)
    run_dir = Path(out) if out is not None else None
    with run_dir_lock(run_dir):
        state, metrics = resume_state(run, run_dir)
        if jax.process_count() > 1:  # every process continues from process 0's state
            state = multihost_utils.broadcast_one_to_all(state)
        if mesh is not None:
            state = distributed.shard_training_state(state, mesh)
            run = dataclasses.replace(run, task=distributed.replicate(run.task, mesh))
        return _loop(run, state, metrics, run_dir, progress and writes(), stop_after)


def resume_state(run: Run, run_dir: Path | None) -> tuple[TrainingState, list[dict[str, Any]]]:
    """The state to start from and the metrics lines so far: the checkpoint of the
    run in ``run_dir`` (its config must have the same trajectory fingerprint),
    else the run's initial state. Call it holding :func:`run_dir_lock`."""
    state, metrics = run.initial_state, []
    if writes():
        resume = prepare_run_dir(run_dir, run.config, update=False) if run_dir is not None else False
        if resume:  # (nothing is changed on disk before the checkpoint and metrics are known good)
            state, _ = load_checkpoint(run_dir, run.initial_state)
            metrics = read_metrics(run_dir, upto_step=int(state.step))
            update_run_config(run_dir, run.config)
        elif run_dir is not None:
            read_metrics(run_dir, upto_step=0)  # a crash before the first checkpoint
    return state, metrics


def run_dir_lock(run_dir: Path | None) -> contextlib.AbstractContextManager:
    """The run folder's lock (:mod:`lofw.runtime.locks`), creating the folder; held by the writing process only."""
    if run_dir is None or not writes():
        return contextlib.nullcontext()
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: exists and is not a folder; choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    return folder_lock(run_dir, "this run folder (another lofw meta-train)")


def merge_overrides(config: MetaTrainConfig | dict[str, Any] | None, overrides: dict[str, Any]) -> MetaTrainConfig:
    """``config`` with ``overrides`` applied (mappings for nested models are merged)."""
    if isinstance(config, MetaTrainConfig):
        data = config.model_dump(exclude_unset=True)
    elif config is None:
        data = {}
    elif isinstance(config, dict):
        data = dict(config)
    else:
        raise ConfigError(f"meta_train: config must be a MetaTrainConfig or a mapping, got {config!r}")
    for key, value in overrides.items():
        if key in ("estimator", "outer") and isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        elif hasattr(value, "model_dump") and key in ("estimator", "outer"):
            data[key] = value.model_dump(exclude_unset=True)
        else:
            data[key] = value
    return parse_meta_train_config(data)


def check_run_config(config: MetaTrainConfig | dict[str, Any], registry: Registry | None = None, where: str = "meta-train config") -> MetaTrainConfig:
    """Validate a run config completely (every name and component argument)
    without loading data, compiling or writing anything; return it resolved.

    Commands call this before they create a folder or a compile cache.

    Raises:
        ConfigError: as :func:`meta_train`.
    """
    registry = registry if registry is not None else load_registry()
    config = parse_meta_train_config(config, where)
    try:
        config = resolve_config(config, registry)
        build_estimator(config, registry)
        _build_tasks(config, registry, check_only=True)
        build_optimizer(config.recipe, jax.random.PRNGKey(config.seed), registry)
    except ConfigError as e:
        raise located(e, where) from None
    return config


@dataclasses.dataclass(frozen=True)
class Run:
    """Everything built from a config before any compilation."""

    config: MetaTrainConfig
    static: Any
    task: AbstractTask | tuple[AbstractTask, ...]  # a tuple: the members of a mixture (lofw.meta.mixture)
    estimator: AbstractEstimator
    outer: optax.GradientTransformation
    initial_state: TrainingState
    meta_step: Callable
    members: tuple[str, ...] = ()  # a mixture's member names
    subset: int | None = None  # a mixture's members trained per meta-step (None: all)

    @property
    def particles_per_step(self) -> int:
        """Particles (antithetic pairs) trained by one meta-step, over every member trained."""
        return self.config.estimator.particles * (self.subset or len(self.members) or 1)


def _build_tasks(config: MetaTrainConfig, registry: Registry, check_only: bool = False):
    """``(task, None)`` of a single-task run, ``(members' tasks, Mixture)`` of a mixture."""
    mixture = parse_mixture(config.task, registry)
    if mixture is None:
        where = "task" if isinstance(config.task, dict) else None
        return build_task(config.task, registry, where=where, check_only=check_only), None
    where = "task.mixture" if isinstance(config.task, dict) else f"tasks.{config.task}.mixture"
    tasks = tuple(build_task(m.spec, registry, where=f"{where}[{i}].task", check_only=check_only)
                  for i, m in enumerate(mixture.members))
    return tasks, mixture


def setup_run(config: MetaTrainConfig, registry: Registry) -> Run:
    """Resolve ``config`` and build the optimizer, task, estimator and outer optimizer.

    Every name is checked here, before anything is traced or written.
    """
    config = resolve_config(config, registry)
    estimator = build_estimator(config, registry)
    task, mixture = _build_tasks(config, registry)
    k_opt, k_est, k_run = jax.random.split(jax.random.PRNGKey(config.seed), 3)
    opt = build_optimizer(config.recipe, k_opt, registry)
    theta, static = eqx.partition(opt, eqx.is_inexact_array)
    outer = make_outer_optimizer(config.outer)
    if mixture is None:
        estimator_state = estimator.init(opt, task, k_est)
        meta_step = cached_meta_step(estimator, config.outer, static)
    else:
        estimator_state = tuple(estimator.init(opt, t, jax.random.fold_in(k_est, i)) for i, t in enumerate(task))
        scales = tuple(loss_scale(t, mixture.normalise, m.scale) for t, m in zip(task, mixture.members))
        meta_step = make_mixture_meta_step(estimator, outer, static, mixture, scales)
    state = TrainingState(
        theta=theta,
        outer_state=outer.init(theta),
        estimator_state=estimator_state,
        key=k_run,
        step=jnp.zeros((), jnp.int32),
    )
    members = () if mixture is None else tuple(m.name for m in mixture.members)
    return Run(config, static, task, estimator, outer, state, meta_step, members,
               None if mixture is None else mixture.subset)


def _postfix(run: Run, line: dict[str, Any], streak: int, first: bool, elapsed: float) -> dict[str, str]:
    """The progress bar's postfix after the meta-step of ``line``, which took ``elapsed`` seconds."""
    postfix = {"meta_loss": f"{line['meta_loss']:.4f}"}
    postfix.update({k.split(".", 1)[1]: f"{v:.3f}" for k, v in line.items() if k.startswith("meta_loss.")})
    if streak >= health.DEAD_STEPS:
        postfix["dead_steps"] = str(streak)
    if first:  # the first call of this process compiles
        postfix["first_step_s"] = f"{elapsed:.1f}"
    else:
        # a particle-step is one inner step of one unroll (one antithetic branch), as in benchmarks/meta_step.py
        particle_steps = run.estimator.unrolls_per_particle * run.particles_per_step * run.config.estimator.truncation
        postfix["ms_per_particle_step"] = f"{1e3 * elapsed / particle_steps:.2f}"
    return postfix


def _loop(run: Run, state: TrainingState, metrics: list, run_dir: Path | None, progress: bool, stop_after: int | None):
    config = run.config
    start = int(state.step)
    end = config.meta_steps if stop_after is None else min(config.meta_steps, start + stop_after)
    bar = tqdm(total=config.meta_steps, initial=start, disable=not progress, file=sys.stderr, unit="meta-step", dynamic_ncols=True)
    writer = RunWriter(run_dir, config, metrics, start, run.particles_per_step)
    try:
        with writer:  # (metrics.jsonl is closed before a handler below writes)
            while int(state.step) < end:
                t0 = time.perf_counter()
                # `state` advances only once its metrics line is written, so an interrupt at any point
                # checkpoints a step whose line is on disk (a resume then cuts back any later line)
                new_state, step_metrics = run.meta_step(state, run.task)
                line = to_host(step_metrics, int(new_state.step))
                writer.record(line)
                state = new_state
                elapsed = time.perf_counter() - t0
                bar.set_postfix(_postfix(run, line, writer.streak, first=line["step"] == start + 1, elapsed=elapsed))
                bar.update(1)
                writer.after_step(state)
    except KeyboardInterrupt:
        writer.interrupted(state)
        raise
    except RunFailed as e:  # non-finite meta-parameters (`state` is the last finite one) or a failed write
        writer.failed(state, e)
        raise
    finally:
        bar.close()
    status, warning = writer.finish(state)
    step = int(state.step)
    return MetaTrainResult(
        status=status,
        step=step,
        optimizer=eqx.combine(state.theta, run.static),
        config=config,
        run_dir=run_dir,
        metrics=metrics,
        warning=warning,
    )
