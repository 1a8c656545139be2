"""Particles (and evaluation seeds) across devices and hosts, with JAX's own sharding.

lofw does not schedule anything itself: a 1-D :class:`jax.sharding.Mesh`
with axis ``"particles"`` is built over the chosen devices
(:func:`make_mesh`), the particle axis of the estimator state (every leaf
of an estimator state has it first, :class:`lofw.AbstractEstimator`) is
placed with ``NamedSharding(mesh, P("particles"))`` and everything else
(meta-parameters, outer optimizer state, run key and step, the task's
data) is replicated with ``P()`` (:func:`shard_training_state`). The
meta-step stays ONE jitted function: XLA's automatic partitioning runs
each device's particles where they live, and the estimator's
``mean(g, axis=0)`` over particles,

    g = (1 / P) * sum_{d=1..D} sum_{i in particles of device d} g_i,

becomes a local sum plus one cross-device all-reduce; the outer update
then runs replicated on every device. Because the reduction order differs,
results with ``D`` devices agree with one device to float tolerance, not
bit for bit (``tests/test_runtime_distributed.py``).

Several processes (hosts): :func:`initialize` calls
``jax.distributed.initialize()`` (Slurm, Open MPI, TPU pods are detected;
or an explicit coordinator), after which ``jax.devices()`` lists every
process's devices and :func:`make_mesh` builds a global mesh. Every process
runs the same program on the same (deterministic) inputs; arrays are made
global with ``jax.make_array_from_callback`` so each process supplies only
its own shards. Only process 0 writes files (:func:`is_writer`);
checkpoints first gather the sharded state to every host
(:func:`to_host`, a collective every process must call). On the CPU
backend the cross-process collectives use gloo (jax 0.10's default
``jax_cpu_collectives_implementation``), set explicitly by
:func:`initialize`.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import equinox as eqx
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from lofw.errors import ConfigError

#: Name of the mesh axis that particles (and evaluation seeds) are split over.
AXIS = "particles"


def make_mesh(devices: str | int | Sequence[jax.Device] | None = "all") -> Mesh:
    """A 1-D mesh with axis :data:`AXIS` over the chosen devices.

    Args:
        devices: ``"all"`` or None: every device of every process
            (``jax.devices()``); an int ``n``: the first ``n`` of them; or an
            explicit list of devices.

    Raises:
        ConfigError: ``n`` < 1, more devices than exist, or an unknown string.
    """
    available = jax.devices()
    if devices is None or devices == "all":
        chosen = list(available)
    elif isinstance(devices, str):
        if devices.isdigit():
            return make_mesh(int(devices))
        raise ConfigError(f"devices: expected 'all' or a number of devices, got {devices!r}")
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        n = int(devices)
        if n < 1 or n > len(available):
            raise ConfigError(
                f"devices: asked for {n} devices, but {len(available)} are available "
                f"({available[0].platform}; valid: 1..{len(available)} or 'all')"
            )
        chosen = list(available[:n])
    else:
        chosen = list(devices)
        if not chosen:
            raise ConfigError("devices: the device list is empty")
    return Mesh(np.array(chosen), (AXIS,))


def check_divisible(count: int, mesh: Mesh, what: str = "particles") -> None:
    """Raise :class:`ConfigError` unless ``count`` splits evenly over the mesh."""
    n = mesh.devices.size
    if count % n != 0:
        lower, upper = (count // n) * n, (count // n + 1) * n
        hint = f"{lower} or {upper}" if lower > 0 else f"{upper}"
        raise ConfigError(
            f"{what}: {count} {what} do not divide evenly across {n} devices; "
            f"use a multiple of {n} (e.g. {hint}) or fewer devices"
        )


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _place(x: Any, sharding: NamedSharding) -> jax.Array:
    """``x`` (identical on every process) as a global array with ``sharding``."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return jax.device_put(x, sharding)  # already global: reshard
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array leaf of ``tree`` replicated on every device of ``mesh`` (``P()``)."""
    sharding = NamedSharding(mesh, P())
    return jax.tree_util.tree_map(lambda x: _place(x, sharding) if _is_array(x) else x, tree)


def shard_particles(tree: Any, mesh: Mesh, what: str = "particles") -> Any:
    """Every array leaf of ``tree`` split over ``mesh`` along its leading axis.

    ``tree`` is a particle-stacked pytree (an estimator state, per-particle
    keys, evaluation seeds): every array leaf has the particle axis first.
    Scalars (no leading axis) are replicated.

    Raises:
        ConfigError: a leading axis that does not divide evenly across the
            devices (the message names both numbers).
    """
    split, whole = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())

    def place(x):
        if not _is_array(x):
            return x
        if np.ndim(x) == 0:
            return _place(x, whole)
        check_divisible(int(np.shape(x)[0]), mesh, what)
        return _place(x, split)

    return jax.tree_util.tree_map(place, tree)


def shard_seeds(keys: Any, mesh: Mesh) -> tuple[jax.Array, int]:
    """Evaluation seeds split over ``mesh``: ``(keys, seeds)``.

    ``keys`` (``[seeds, ...]``) is padded to a multiple of the number of
    devices by repeating its last key (a vmapped computation over seeds is
    then the same per seed; the caller drops the padded results, ``[:seeds]``)
    and sharded on its leading axis.
    """
    host = np.asarray(jax.device_get(keys))
    seeds, n = host.shape[0], mesh.devices.size
    padded = -seeds % n
    if padded:
        host = np.concatenate([host, np.repeat(host[-1:], padded, axis=0)])
    return shard_particles(host, mesh, "seeds"), seeds


def shard_training_state(state: Any, mesh: Mesh) -> Any:
    """A :class:`lofw.meta.checkpoint.TrainingState` placed on ``mesh``: the
    estimator state sharded on its particle axis, the meta-parameters, outer
    optimizer state, key and step replicated."""
    replicated = replicate(eqx.tree_at(lambda s: s.estimator_state, state, None), mesh)
    return eqx.tree_at(
        lambda s: s.estimator_state, replicated, shard_particles(state.estimator_state, mesh),
        is_leaf=lambda x: x is None,
    )


def state_shardings(state: Any, mesh: Mesh) -> Any:
    """The shardings :func:`shard_training_state` gives ``state`` (a pytree of
    :class:`NamedSharding` / None), for ``jax.lax.with_sharding_constraint``."""
    split, whole = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())
    arrays = lambda t, s: jax.tree_util.tree_map(  # noqa: E731
        lambda x: (s if np.ndim(x) else whole) if _is_array(x) else None, t
    )
    out = arrays(eqx.tree_at(lambda s: s.estimator_state, state, None), whole)
    return eqx.tree_at(lambda s: s.estimator_state, out, arrays(state.estimator_state, split), is_leaf=lambda x: x is None)


def constrain(state: Any, mesh: Mesh) -> Any:
    """Inside a jitted function: pin ``state`` (a TrainingState) to the layout
    of :func:`shard_training_state`, so outputs stay sharded step after step."""
    dynamic, static = eqx.partition(state, _is_array)
    shardings = state_shardings(dynamic, mesh)
    return eqx.combine(jax.lax.with_sharding_constraint(dynamic, shardings), static)


def to_host(tree: Any) -> Any:
    """Every array leaf as a host NumPy array holding the GLOBAL value.

    With several processes this is a collective (every process must call it:
    ``multihost_utils.process_allgather``); with one it is ``jax.device_get``.
    """
    if jax.process_count() == 1:
        return jax.device_get(tree)

    def gather(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x) if _is_array(x) else x

    return jax.tree_util.tree_map(gather, tree)


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
) -> None:
    """Join a multi-process JAX run (``jax.distributed.initialize``).

    With no arguments the cluster is detected (Slurm, Open MPI, TPU pods, ...);
    otherwise give all three of ``coordinator`` (``"host:port"`` of process
    0), ``num_processes`` and ``process_id``. Idempotent. Must be called
    before any JAX computation. On CPU, cross-process collectives use gloo.

    Raises:
        ConfigError: some but not all of the three flags, or no cluster
            detected and no flags, or the coordinator unreachable.
    """
    if jax.distributed.is_initialized():
        return
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    missing = [k for k, v in given.items() if v is None]
    if missing and len(missing) < 3:
        raise ConfigError(f"--distributed: give all of --coordinator, --num-processes, --process-id (missing {', '.join(missing)})")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=num_processes,
            process_id=process_id,
            local_device_ids=local_device_ids,
        )
    except (ValueError, RuntimeError) as e:
        raise ConfigError(
            f"--distributed: could not join a multi-process run ({e}); outside Slurm / Open MPI / TPU pods "
            f"give --coordinator HOST:PORT --num-processes N --process-id I"
        ) from None


#: Cross-device operations of compiled HLO that :func:`collectives` counts.
COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter")


def collectives(hlo_text: str) -> dict[str, int]:
    """How many of each :data:`COLLECTIVES` op a compiled program's HLO text holds.

    For ``meta_step.lower(state, task).compile()``'s text (Equinox:
    ``.compiled.as_text()``): a particle-sharded meta-step should show
    all-reduces only (the mean over particles), never an all-gather of the
    particle state.
    """
    found = re.findall(r" (" + "|".join(COLLECTIVES) + r")(?:-start)?\(", hlo_text)
    return {op: found.count(op) for op in COLLECTIVES}


def is_writer() -> bool:
    """True in the process that writes files (metrics, checkpoints, plots): process 0."""
    return jax.process_index() == 0
