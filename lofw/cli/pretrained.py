"""``lofw pretrained``: the pretrained optimizers and their model cards; export one.

    lofw pretrained                     # table: name, recipe, task, horizon, results
    lofw pretrained --json              # every card, for tools
    lofw pretrained export runs/quickstart --variant star --name star   # from a finished grid cell
    lofw pretrained export runs/my_run --format torch --out my_run.lofw  # any source, for lofw.torch
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lofw.cli.plugins import format_table
from lofw.errors import ConfigError
from lofw.grid.export import export, export_portable
from lofw.pretrained_loader import read_card, registered
from lofw.registry import load_registry
from lofw.runtime.disk import check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "export"], default="list",
                        help="list (default) or export")
    parser.add_argument("grid", nargs="?", metavar="GRID_DIR",
                        help="export: the output folder of a finished `lofw ablate`; with --format torch, any "
                             "SOURCE of `lofw evaluate` (run folder, cell folder, pretrained:NAME, recipe) too")
    parser.add_argument("--format", choices=["lofw", "torch"], default="lofw",
                        help="export: lofw (default: a pretrained optimizer folder, params.eqx + card.json) or torch "
                             "(one JAX-free file for lofw.torch, written to --out)")
    parser.add_argument("--out", metavar="FILE", help="export --format torch: the file to write (e.g. NAME.lofw)")
    parser.add_argument("--json", action="store_true", help="list: print the cards as JSON")
    parser.add_argument("--cell", metavar="ID", help="export: the cell id")
    parser.add_argument("--variant", metavar="LABEL", help="export: the cell's variant label, e.g. recipe=star")
    parser.add_argument("--seed", type=int, help="export: the cell's meta-training seed (with --variant)")
    parser.add_argument("--name", help="export: the optimizer's name")
    parser.add_argument("--into", metavar="DIR", help="export: parent folder (default: lofw's plugins/pretrained/)")
    parser.add_argument("--force", action="store_true", help="export: replace an existing optimizer of that name")
    parser.add_argument("--registry", help="registry file (default: $LOFW_REGISTRY or the project's)")


def _summary(card: dict) -> str:
    horizons = card.get("results", {}).get("horizons", {})
    parts = []
    for steps, entry in sorted(horizons.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0):
        learned, adam = entry.get("learned", {}), entry.get("adam", {})

        def fmt(e: dict) -> str:
            value = e.get("final_loss_mean")
            return "-" if value is None else f"{value:.3g}"

        parts.append(f"{steps}: {fmt(learned)}" + (f" (adam {fmt(adam)})" if adam else ""))
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    if args.action == "export" and args.format == "torch":
        if not args.grid or not args.out:
            raise ConfigError("export --format torch: give SOURCE and --out FILE")
        registry = load_registry(args.registry) if args.registry else None
        check_writable(Path(args.out).parent, "--out")
        path = export_portable(args.grid, args.out, name=args.name, cell=args.cell, variant=args.variant,
                               seed=args.seed, force=args.force, registry=registry)
        print(f"exported {args.grid} for lofw.torch to {path} ({path.stat().st_size} bytes)")
        print(f"use it: lofw.torch.load({str(path)!r}, model.parameters())")
        return 0
    if args.action == "export":
        if not args.grid or not args.name:
            raise ConfigError("export: give GRID_DIR and --name (and --cell ID or --variant LABEL)")

        registry = load_registry(args.registry) if args.registry else None
        if args.into is not None:
            check_writable(Path(args.into), "--into")
        folder = export(args.grid, args.name, cell=args.cell, variant=args.variant, seed=args.seed,
                        into=args.into, force=args.force, registry=registry)
        card = read_card(folder)
        print(f"exported {args.name} ({card['meta_parameters']} meta-parameters) to {folder}")
        print(f"final loss by steps: {_summary(card)}")
        return 0
    if args.grid:
        raise ConfigError(f"list: takes no GRID_DIR (got {args.grid!r}); did you mean `lofw pretrained export {args.grid}`?")
    infos = registered()
    cards = {name: read_card(info.folder) for name, info in infos.items()}
    if args.json:
        print(json.dumps([{"name": n, "plugin": infos[n].plugin, "folder": str(infos[n].folder), "card": c}
                          for n, c in cards.items()], indent=2))
        return 0

    rows = [{"name": n, "recipe": str(c.get("recipe_name") or "custom"), "task": str(c.get("task_name") or "custom"),
             "horizon": str(c.get("horizon", "")), "meta_steps": str(c.get("meta_steps", "")),
             "final loss (vs adam)": _summary(c), "plugin": infos[n].plugin} for n, c in cards.items()]
    if not rows:
        print("no pretrained optimizers installed")
        return 0
    print(format_table(rows, ["name", "recipe", "task", "horizon", "meta_steps", "final loss (vs adam)", "plugin"]))
    return 0
