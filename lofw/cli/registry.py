"""``lofw registry``: the recipes, tasks, estimators, grids and suites of registry.yaml."""

from __future__ import annotations

import argparse
import json

from lofw.cli.plugins import format_table
from lofw.recipes import resolve_recipe
from lofw.registry import load_registry
from lofw.slots import SLOTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", help="registry file (default: $LOFW_REGISTRY or the project's registry.yaml)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _slots(recipe) -> str:
    parts = [f"{slot}={getattr(recipe, slot).name}" for slot in SLOTS if getattr(recipe, slot) is not None]
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    reg = load_registry(args.file)
    recipes = {
        name: resolve_recipe(r, reg.recipes, f"{reg.path}: recipes.{name}", name) for name, r in reg.recipes.items()
    }
    if args.json:
        print(json.dumps({
            "path": str(reg.path),
            "recipes": {n: r.model_dump(mode="json", exclude_none=True) | {"extends": reg.recipes[n].extends}
                        for n, r in recipes.items()},
            "tasks": reg.tasks,
            "estimators": reg.estimators,
            "grids": reg.grids,
            "suites": {n: [e.model_dump(exclude_none=True) for e in s] for n, s in reg.suites.items()},
        }, indent=2))
        return 0
    print(f"registry: {reg.path}\n")
    rows = [{"recipe": n, "extends": reg.recipes[n].extends or "", "slots": _slots(r)} for n, r in recipes.items()]
    print(format_table(rows, ["recipe", "extends", "slots"]))
    for section in ("tasks", "estimators", "grids"):
        entries = getattr(reg, section)
        if entries:
            print(f"\n{section}: {', '.join(sorted(entries))}")
    for name, entries in reg.suites.items():
        tasks = ", ".join(e.task + (f" ({e.steps} steps)" if e.steps else "") for e in entries)
        print(f"\nsuite {name}: {tasks}")
    return 0
