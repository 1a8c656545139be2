"""``lofw generalize``: optimizers on a task suite, side by side, against tuned baselines.

Examples::

    lofw generalize star blackbox --suite fig4_offline --steps 200 --seeds 2          # untrained recipes
    lofw generalize runs/quickstart/cells/3f2a9c01b7de runs/my_run --suite fig4_offline \\
        --baseline adam --baseline nadamw --nadamw-trials 32 --jobs 2

Writes per task and optimizer ``curves.npz`` and ``summary.json`` under
``--out`` (default ``runs/generalize/<suite>``), then ``summary.csv``,
``summary.md`` and ``generalize.png``. Rerunning the same command skips the
finished (task, optimizer) pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lofw.errors import ConfigError
from lofw.evaluation.generalize import plan, run_plan
from lofw.evaluation.generalize_report import csv_text, load_results, table_rows, write_generalize_report
from lofw.registry import load_registry
from lofw.runtime.compile import enable_compile_cache
from lofw.runtime.disk import check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="a meta-training run folder, a grid cell folder (OUT/cells/<id>), pretrained:NAME or a recipe name")
    parser.add_argument("--suite", required=True, help="a suite of registry.yaml (suites:)")
    parser.add_argument("--steps", type=int, help="inner steps of every task (default: the suite's, else 2000)")
    parser.add_argument("--seeds", type=int, default=5, help="task instances per task (default 5)")
    parser.add_argument("--baseline", action="append", default=None, metavar="NAME",
                        help="adam (half-decade learning-rate grid) or nadamw (random search), optionally NAME@N "
                             "(tuned for the first N steps); repeatable (default: adam)")
    parser.add_argument("--nadamw-trials", type=int, default=8, metavar="T",
                        help="random-search trials of the nadamw baseline (default 8; the paper used 1000)")
    parser.add_argument("--out", help="output folder (default: runs/generalize/<suite>)")
    parser.add_argument("--jobs", type=int, default=1, metavar="J", help="run tasks in J worker processes (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the task instances (default 0)")
    parser.add_argument("--seed-batch", type=int, metavar="B",
                        help="train B seeds per compiled call, each batch saved (default: all seeds at once)")
    parser.add_argument("--registry", metavar="FILE", help="registry file (default: $LOFW_REGISTRY or the project's)")
    parser.add_argument("--task", help="run only this task of the suite (what a worker process does)")
    parser.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not keep compiled XLA programs in OUT/.jax_cache")


def _worker_args(args: argparse.Namespace, out: Path, baselines: list[str]) -> list[str]:
    command = [*args.sources, "--suite", args.suite, "--out", str(out), "--seeds", str(args.seeds),
               "--seed", str(args.seed), "--nadamw-trials", str(args.nadamw_trials), "--no-report", "--no-progress"]
    for b in baselines:
        command += ["--baseline", b]
    for flag, value in (("--steps", args.steps), ("--seed-batch", args.seed_batch), ("--registry", args.registry)):
        if value is not None:
            command += [flag, str(value)]
    if args.no_compile_cache:
        command.append("--no-compile-cache")
    return command


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ConfigError(f"--jobs: must be at least 1, got {args.jobs}")
    registry = load_registry(args.registry)
    baselines = args.baseline if args.baseline is not None else ["adam"]
    p = plan(args.sources, args.suite, steps=args.steps, seeds=args.seeds, baselines=baselines,
             nadamw_trials=args.nadamw_trials, out=args.out, seed=args.seed, seed_batch=args.seed_batch,
             registry=registry)
    check_writable(p.out)
    if not args.no_compile_cache:
        enable_compile_cache(p.out)
    failed = run_plan(p, registry, jobs=args.jobs, only_task=args.task, progress=not args.no_progress,
                      worker_args=_worker_args(args, p.out, baselines))
    for failure in failed:
        print(f"lofw generalize: task {failure}", file=sys.stderr)
    if not args.no_report and args.task is None:
        write_generalize_report(p.out)
        print(csv_text(table_rows(load_results(p.out)[1])), end="")
        print(f"report: {p.out / 'summary.md'}")
    return 1 if failed else 0
