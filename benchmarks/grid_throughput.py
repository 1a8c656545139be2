"""Wall and CPU time of a grid's phases, with and without populations.

Runs the quickstart grid (``ablations/quickstart.yaml``: 4 variants x 2
meta-seeds) at reduced meta-steps and evaluation steps, twice, each in a
fresh process with no compile cache:

  alone        every cell meta-trained by itself (``lofw ablate`` without
               ``--population``; cells of one variant share the compiled
               meta-step inside the process, as with ``--jobs 1``)
  population   each variant's meta-seeds as one population
               (``--population 2``: one vmapped program per variant)

and prints, for each, the seconds of each phase:

  compile      the first meta-step of every cell or population (tracing + XLA)
  meta-train   the remaining meta-steps
  evaluate     every cell's evaluation and the baselines (the grid run once
               meta-training is done)
  report       ``lofw report``

as wall time and as CPU time of the process (user + system, every thread).
Run::

    python benchmarks/grid_throughput.py [--meta-steps 100] [--eval-steps 2000] [--grid quickstart]

These machines are shared and noisy: compare the two modes of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("compile", "meta-train", "evaluate", "report")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_mode(grid_file: Path, out: Path, population: int) -> dict[str, dict[str, float]]:
    """The phases of one mode, in this process (call it in a fresh one)."""
    from lofw.grid import load_grid, run_grid, write_report
    from lofw.grid.files import run_dir
    from lofw.grid.populations import plan_populations
    from lofw.grid.runner import prepare
    from lofw.meta.population import meta_train_population
    from lofw.meta.training import meta_train
    from lofw.registry import load_registry

    registry = load_registry()
    loaded = load_grid(grid_file, registry)
    prepare(loaded, out)
    groups = plan_populations(loaded.cells, population, registry)
    times: dict[str, dict[str, float]] = {}

    def train(stop_after):
        for group in groups:
            outs = [run_dir(out, c.id) for c in group]
            if len(group) == 1:
                meta_train(group[0].config, out=outs[0], registry=registry, progress=False, stop_after=stop_after)
            else:
                meta_train_population([c.config for c in group], outs=outs, registry=registry, progress=False,
                                      stop_after=stop_after)

    phases = {
        "compile": lambda: train(1),
        "meta-train": lambda: train(None),
        "evaluate": lambda: run_grid(loaded, out, registry=registry, progress=False, say=lambda m: None,
                                     population=population),
        "report": lambda: write_report(out),
    }
    for name in PHASES:
        wall, cpu = time.perf_counter(), _cpu()
        phases[name]()
        times[name] = {"wall_s": time.perf_counter() - wall, "cpu_s": _cpu() - cpu}
    return times


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[str, float]]] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="quickstart", help="a grid of registry.yaml or a grid file (default quickstart)")
    parser.add_argument("--meta-steps", type=int, default=100)
    parser.add_argument("--eval-steps", type=int, default=2000)
    parser.add_argument("--population", type=int, default=2, help="members per population (default 2)")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # (a child process: one mode)
    parser.add_argument("--grid-file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode:
        times = run_mode(Path(args.grid_file), Path(args.out), int(args.mode))
        print(json.dumps(times))
        return None
    from lofw.registry import load_registry

    grids = load_registry().grids
    spec = yaml.safe_load((ROOT / grids[args.grid] if args.grid in grids else Path(args.grid)).read_text())
    spec["base"]["meta_steps"] = args.meta_steps
    spec["eval"]["horizons"] = [args.eval_steps]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        grid_file = Path(tmp) / f"{args.grid}.yaml"
        grid_file.write_text(yaml.safe_dump(spec))
        for label, population in (("alone", 1), ("population", args.population)):
            env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"}
            proc = subprocess.run(
                [sys.executable, __file__, "--mode", str(population), "--grid-file", str(grid_file),
                 "--out", str(Path(tmp) / label)], env=env, capture_output=True, text=True, check=True)
            results[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"grid {args.grid}: {len(spec.get('seeds', [0]))} seeds per variant, {args.meta_steps} meta-steps, "
          f"evaluation {args.eval_steps} steps; "
          f"population {args.population}; {os.cpu_count()} CPUs")
    print(f"{'phase':<11} {'alone wall':>11} {'pop wall':>9} {'ratio':>6}   {'alone cpu':>10} {'pop cpu':>8}")
    totals = {label: [0.0, 0.0] for label in results}
    for phase in PHASES:
        a, p = results["alone"][phase], results["population"][phase]
        for label, t in (("alone", a), ("population", p)):
            totals[label][0] += t["wall_s"]
            totals[label][1] += t["cpu_s"]
        print(f"{phase:<11} {a['wall_s']:>10.1f}s {p['wall_s']:>8.1f}s {p['wall_s'] / a['wall_s']:>6.2f}   "
              f"{a['cpu_s']:>9.1f}s {p['cpu_s']:>7.1f}s")
    (aw, ac), (pw, pc) = totals["alone"], totals["population"]
    print(f"{'total':<11} {aw:>10.1f}s {pw:>8.1f}s {pw / aw:>6.2f}   {ac:>9.1f}s {pc:>7.1f}s")
    return results


if __name__ == "__main__":
    main()
