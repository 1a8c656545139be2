"""``lofw ablate``: run an ablation grid (a registry name or a YAML file), resumably.

Examples::

    lofw ablate quickstart                                   # registry grid, a few minutes on 2 CPU cores
    lofw ablate ablations/star_weight_decay.yaml --dry-run   # list the cells, run nothing
    lofw ablate ablations/star_weight_decay.yaml --out runs/wd --jobs 2
    lofw ablate ablations/star_weight_decay.yaml --out runs/wd --cell 3f2a9c01b7de   # one cell
    lofw ablate quickstart --population 2        # each variant's two meta-seeds as one vmapped program

Rerunning the same command skips finished cells and resumes the others from
their last checkpoint. The report (``lofw report OUT``) is written at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lofw.cli.plugins import format_table
from lofw.errors import ConfigError, choices
from lofw.grid.expand import variant_label
from lofw.grid.files import cell_dir
from lofw.grid.populations import DEFAULT_POPULATION, plan_populations
from lofw.grid.report import write_report
from lofw.grid.runner import HELD, cell_status, prepare, run_cell, run_grid, run_population
from lofw.grid.validate import load_grid
from lofw.loggers import use_loggers
from lofw.meta.training import check_run_config
from lofw.registry import load_registry
from lofw.runtime.compile import enable_compile_cache
from lofw.runtime.disk import check_writable, read_json
from lofw.runtime.locks import lock_holder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", metavar="GRID", help="a grid name from registry.yaml (grids:) or a YAML file")
    parser.add_argument("--out", help="output folder (default: runs/<grid name>)")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the cells; run and write nothing")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="run cells in N worker processes (default 1)")
    parser.add_argument("--cell", metavar="ID", help="run only the cell with this id, or the cells of a "
                        "comma-separated list (what a worker process does)")
    parser.add_argument("--population", type=int, default=DEFAULT_POPULATION, metavar="N",
                        help="meta-train up to N cells that differ only in seed, outer lr and weight decay as one "
                        f"vmapped program (default {DEFAULT_POPULATION}: every cell alone; lofw.grid.populations)")
    parser.add_argument("--registry", metavar="FILE", help="registry file (default: $LOFW_REGISTRY or the project's)")
    parser.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (log files, CI)")
    parser.add_argument("--log", action="append", default=[], metavar="LOGGER",
                        help="also send metrics to this logger plugin, e.g. tensorboard (repeatable; lofw.loggers)")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not keep compiled XLA programs in OUT/.jax_cache (shared by cells, workers and reruns)")


def _print_cells(loaded, out: Path | None) -> None:
    rows = []
    for c in loaded.cells:
        row = {"#": str(c.index), "id": c.id, "variant": variant_label(c.variant), "seed": str(c.config.seed)}
        if out is not None:
            row["status"] = cell_status(out, c)
        rows.append(row)
    columns = ["#", "id", "variant", "seed"] + (["status"] if out is not None else [])
    print(format_table(rows, columns))


def _run_cells(loaded, cells, out: Path, registry, args: argparse.Namespace) -> int:
    """``--cell ID[,ID...]``: run these cells (in populations of up to ``--population``); what a worker does."""
    prepare(loaded, out)
    statuses = {}
    for group in plan_populations(cells, args.population, registry):
        if len(group) == 1:
            statuses[group[0].id] = run_cell(loaded, group[0], out, registry=registry, progress=not args.no_progress)
        else:
            statuses.update(run_population(loaded, group, out, registry=registry, progress=not args.no_progress))
    for cell in cells:
        if statuses[cell.id] == HELD:
            print(f"cell {cell.id}: held by process {lock_holder(cell_dir(out, cell.id))}; skipped")
        else:
            print(f"cell {cell.id}: {statuses[cell.id]}")
    return 0 if all(s in ("done", "diverged", HELD) for s in statuses.values()) else 1


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ConfigError(f"--jobs: must be at least 1, got {args.jobs}")
    if args.population < 1:
        raise ConfigError(f"--population: must be at least 1, got {args.population}")
    registry = load_registry(args.registry)
    loaded = load_grid(args.grid, registry)
    out = Path(args.out) if args.out else Path("runs") / loaded.grid.name
    existing = read_json(out / "grid.json")
    if isinstance(existing, dict) and existing.get("name") != loaded.grid.name:
        raise ConfigError(
            f"--out {out}: holds a run of grid {existing.get('name')!r}, not {loaded.grid.name!r}; choose another --out"
        )
    n_variants = len({c.id for c in loaded.cells if c.config.seed == loaded.grid.seeds[0]})
    if args.dry_run:
        print(f"grid {loaded.grid.name} ({loaded.source}): {len(loaded.cells)} cells = "
              f"{n_variants} variants x {len(loaded.grid.seeds)} seeds; output folder {out}")
        _print_cells(loaded, out if (out / "grid.json").is_file() else None)
        print("dry run: nothing was run or written")
        return 0

    matches = loaded.cells
    if args.cell:
        by_id = {c.id: c for c in loaded.cells}
        wanted = args.cell.split(",")
        for cid in wanted:
            if cid not in by_id:
                raise ConfigError(f"--cell: no cell {cid!r} in grid {loaded.grid.name}; valid choices: "
                                  f"{choices(by_id)}")
        if len(set(wanted)) != len(wanted):
            raise ConfigError(f"--cell: a cell is given twice: {args.cell}")
        matches = [by_id[cid] for cid in wanted]
    if not isinstance(existing, dict) and (out / "grid.json").exists():
        raise ConfigError(
            f"{out / 'grid.json'}: damaged (not a grid description); nothing was changed. If {out} holds a run "
            f"of grid {loaded.grid.name!r}, delete that file and run again (it is rewritten from the grid); "
            "otherwise choose another --out"
        )
    checked: set[str] = set()
    for cell in matches:  # every name and component argument, before anything is created on disk
        key = cell.config.model_dump_json(include={"recipe", "task", "estimator", "horizon"})
        if key not in checked:
            checked.add(key)
            check_run_config(cell.config, registry, f"{loaded.source}: cell {cell.id} ({cell.overrides})")
    check_writable(out)
    with use_loggers(args.log):
        if not args.no_compile_cache:
            enable_compile_cache(out)
        if args.cell:
            return _run_cells(loaded, matches, out, registry, args)
        outcome = run_grid(loaded, out, jobs=args.jobs, registry=registry, progress=not args.no_progress,
                           log=tuple(args.log), population=args.population)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.counts.items()))
    held = f"; {outcome.held} held by another process, skipped" if outcome.held else ""
    print(f"grid {loaded.grid.name}: {counts}{held} ({outcome.seconds:.0f} s) in {out}", file=sys.stderr)
    if not args.no_report:
        folder = write_report(out)
        print(f"report: {folder / 'summary.md'}")
    return 0 if outcome.ok else 1
