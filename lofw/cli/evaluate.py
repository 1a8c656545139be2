"""``lofw evaluate``: train fresh task instances with a meta-trained optimizer.

    lofw evaluate runs/star --task fmnist_mlp --steps 20000 --seeds 5 --baseline adam
    lofw evaluate pretrained:star --steps 200 --baseline adam

Writes ``summary.json`` and ``curves.npz`` to ``<run>/eval/<task>-<steps>/``
(or ``--out``) and prints a summary table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lofw.evaluation.evaluate import evaluate
from lofw.evaluation.verdicts import verdicts
from lofw.loggers import load_loggers, log_curves, use_loggers
from lofw.registry import load_registry
from lofw.runtime.disk import check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a meta-training run folder, or pretrained:NAME (lofw pretrained lists them)")
    parser.add_argument("--task", help="task name in registry.yaml (default: the run's task)")
    parser.add_argument("--steps", type=int, help="inner steps (default: 10x the run's horizon)")
    parser.add_argument("--seeds", type=int, default=5, help="task instances (default: 5)")
    parser.add_argument(
        "--baseline", action="append", default=[], help="adam or nadamw, learning rate tuned on a half-decade grid (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    parser.add_argument("--out", help="output folder (default: <run>/eval/<task>-<steps>)")
    parser.add_argument("--registry", help="registry file (default: $LOFW_REGISTRY or the project's)")
    parser.add_argument("--devices", help="split the seeds over 'all' devices or the first N (default: one device)")
    parser.add_argument("--log", action="append", default=[], metavar="LOGGER",
                        help="also send the curves to this logger plugin, e.g. tensorboard (needs an output folder)")


def run(args: argparse.Namespace) -> int:
    registry = load_registry(args.registry) if args.registry else None
    load_loggers(args.log)  # an unknown logger fails before anything runs
    if args.out is not None or Path(args.run).is_dir():  # (a run folder gets eval/ inside it)
        check_writable(Path(args.out if args.out is not None else args.run), "--out" if args.out else "RUN")
    result = evaluate(
        args.run, args.task, steps=args.steps, seeds=args.seeds, baselines=args.baseline,
        out=args.out, seed=args.seed, registry=registry, devices=args.devices,
    )
    if args.log and result.out_dir is not None:
        with use_loggers(args.log):
            log_curves(result.out_dir, result.curves)
    s = result.summary
    print(f"task {s['task']}, {s['steps']} steps, {s['seeds']} seeds")
    flags, sentences = verdicts(s)
    print(f"{'optimizer':<10} {'final loss':>12} {'mean norm. loss':>16} {'diverged':>9} {'lr':>8}  note")
    for name, e in s["optimizers"].items():
        final = "-" if e["final_loss_mean"] is None else f"{e['final_loss_mean']:.4f}"
        mean = "-" if e["mean_loss"] is None else f"{e['mean_loss']:.4f}"
        lr = f"{e['lr']:g}" if "lr" in e else ""
        print(f"{name:<10} {final:>12} {mean:>16} {e['n_diverged']:>5}/{s['seeds']:<3} {lr:>8}  {flags.get(name, '')}".rstrip())
    if result.out_dir is not None:
        print(f"written to {result.out_dir}")
    for sentence in sentences:
        print(f"warning: {sentence}", file=sys.stderr)
    return 0
