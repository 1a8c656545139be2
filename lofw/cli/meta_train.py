"""``lofw meta-train``: meta-train a learned optimizer on a task (resumable).

    lofw meta-train star --task fmnist_mlp --estimator pes --steps 5000 --out runs/star

Run it again with the same arguments to resume from the last checkpoint.
Scale out: ``--devices all`` shards the particles over this machine's
devices; ``--distributed`` (e.g. under ``srun``) joins every process into
one run whose particles span all their devices (:mod:`lofw.runtime.distributed`).

Settings come from ``--config FILE.yaml`` (keys of ``lofw.MetaTrainConfig``)
and are overridden by the flags given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lofw.errors import ConfigError
from lofw.loggers import use_loggers
from lofw.meta.config import parse_meta_train_config
from lofw.meta.training import check_run_config, meta_train
from lofw.reading import read_yaml
from lofw.registry import load_registry
from lofw.runtime.compile import enable_compile_cache
from lofw.runtime.disk import check_writable
from lofw.runtime.distributed import initialize, is_writer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", help="recipe name in registry.yaml (default: star)")
    parser.add_argument("--config", help="YAML file with MetaTrainConfig keys (flags override it)")
    parser.add_argument("--task", help="task or mixture name in registry.yaml, or a comma-separated list of task "
                                       "names: a mixture of equal weights (default: fmnist_mlp)")
    parser.add_argument("--estimator", help="estimator preset or component: pes, es, tbptt (default: pes)")
    parser.add_argument("--steps", type=int, dest="meta_steps", help="meta-steps (default: 5000)")
    parser.add_argument("--horizon", type=int, help="inner steps per episode (default: 2000)")
    parser.add_argument("--horizon-min", type=int, metavar="N",
                        help="sample each episode's length log-uniformly in [N, --horizon] (horizon_schedule log_uniform)")
    parser.add_argument("--truncation", type=int, help="inner steps per meta-step (default: 50)")
    parser.add_argument("--particles", type=int, help="particles per meta-step (default: 8)")
    parser.add_argument("--std", type=float, help="perturbation std of pes/es (default: 0.01)")
    parser.add_argument("--lr", type=float, help="outer AdamW learning rate (default: 1e-4)")
    parser.add_argument("--weight-decay", type=float, help="outer weight decay, a multiple of --lr (default: 0)")
    parser.add_argument("--seed", type=int, help="run seed (default: 0)")
    parser.add_argument("--checkpoint-every", type=int, help="meta-steps between checkpoints (default: 100)")
    parser.add_argument("--out", help="run folder (default: runs/<recipe>-<task>-<estimator>)")
    parser.add_argument("--registry", help="registry file (default: $LOFW_REGISTRY or the project's)")
    parser.add_argument("--stop-after", type=int, help="stop after this many meta-steps in this call")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--log", action="append", default=[], metavar="LOGGER",
                        help="also send metrics to this logger plugin, e.g. tensorboard (repeatable; lofw.loggers)")
    scale = parser.add_argument_group("scale out (lofw.runtime.distributed)")
    scale.add_argument("--devices", help="shard the particles over 'all' devices or the first N (default: one device; 'all' with --distributed)")
    scale.add_argument("--distributed", action="store_true",
                       help="join a multi-process run (jax.distributed: Slurm/Open MPI/TPU detected, or the three flags below); only process 0 writes")
    scale.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0 (with --distributed)")
    scale.add_argument("--num-processes", type=int, help="number of processes (with --distributed)")
    scale.add_argument("--process-id", type=int, help="this process's index, 0..N-1 (with --distributed)")
    parser.add_argument(
        "--no-compile-cache", action="store_true",
        help="do not keep compiled XLA programs in OUT/.jax_cache (makes a resumed run start without recompiling)",
    )


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The run config: ``--config`` file, then the flags given."""
    data: dict[str, Any] = {}
    if args.config:
        loaded = read_yaml(Path(args.config))
        if not isinstance(loaded, dict):
            raise ConfigError(f"{args.config}: expected a mapping of MetaTrainConfig keys")
        data = loaded
    for key in ("recipe", "task", "meta_steps", "horizon", "seed", "checkpoint_every"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.task is not None and "," in args.task:
        data["task"] = {"mixture": [{"task": name.strip()} for name in args.task.split(",")]}
    if args.horizon_min is not None:
        data["horizon_schedule"] = {"name": "log_uniform", "min": args.horizon_min}
    _merge_flags(data, "estimator", args, (("estimator", "name"), ("truncation", "truncation"),
                                           ("particles", "particles"), ("std", "std")), where=args.config)
    _merge_flags(data, "outer", args, (("lr", "lr"), ("weight_decay", "weight_decay")), where=args.config)
    return data


def _merge_flags(data: dict[str, Any], section: str, args: argparse.Namespace, pairs, where: str | None) -> None:
    """Set ``data[section][key]`` from each flag given; a section that is not a mapping is left
    to validation when no flag touches it."""
    given = {key: getattr(args, flag) for flag, key in pairs if getattr(args, flag) is not None}
    if not given:
        return
    current = data.get(section)
    if current is not None and not isinstance(current, dict):
        raise ConfigError(f"{where}: {section}: expected a mapping, got {current!r}")
    data[section] = {**(current or {}), **given}


def run(args: argparse.Namespace) -> int:
    explicit = [f for f, v in (("--coordinator", args.coordinator), ("--num-processes", args.num_processes),
                                ("--process-id", args.process_id)) if v is not None]
    if explicit and not args.distributed:
        raise ConfigError(f"{explicit[0]}: only meaningful with --distributed")
    if args.distributed:  # before any JAX computation

        initialize(args.coordinator, args.num_processes, args.process_id)
    devices = args.devices if args.devices is not None else ("all" if args.distributed else None)
    where = args.config or "command line"
    config = parse_meta_train_config(config_from_args(args), where)
    registry = load_registry(args.registry) if args.registry else None
    check_run_config(config, registry, where)  # every name, before anything is created on disk
    out = args.out
    if out is None:
        name = lambda x: x if isinstance(x, str) else "custom"
        task = args.task.replace(",", "+") if args.task else name(config.task)
        out = f"runs/{name(config.recipe)}-{task}-{config.estimator.name}"

    if is_writer():  # only process 0 writes; the other hosts need not see the folder
        check_writable(Path(out))
    with use_loggers(args.log):
        if not args.no_compile_cache:
            enable_compile_cache(Path(out))
        result = meta_train(
            config, out=out, registry=registry, progress=not args.no_progress, stop_after=args.stop_after, devices=devices
        )

    if not is_writer():
        return 0
    last = result.metrics[-1]["meta_loss"] if result.metrics else float("nan")
    print(f"{result.status}: {result.step}/{result.config.meta_steps} meta-steps, meta-loss {last:.4f}, run folder {out}"
          + (f"; warning: {result.warning}" if result.warning else ""), file=sys.stderr)
    return 0
