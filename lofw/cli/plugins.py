"""``lofw plugins``: the registered components and who registered them, and the broken plugins.

It lists a broken plugin (one that failed to import, validate or register)
with the reason instead of stopping, and exits 0: it is where to look when
another command says a plugin is broken.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from lofw.entry_points import DISABLE_PLUGINS_ENV
from lofw.plugin_manager import broken_plugins, component_infos


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--kind", help="only this component kind")


def _rows(kind: str | None) -> list[dict[str, str]]:
    return [
        {
            "kind": info.kind,
            "name": info.name,
            "class": f"{info.cls.__module__}.{info.cls.__qualname__}",
            "plugin": info.plugin,
            "distribution": info.distribution or "",
        }
        for info in component_infos(kind, strict=False)
    ]


def format_table(rows: list[dict[str, str]], columns: list[str]) -> str:
    """A plain aligned text table."""
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    rows = _rows(args.kind)
    broken = [{**dataclasses.asdict(b), "distribution": b.distribution or ""} for b in broken_plugins()]
    if args.json:
        print(json.dumps(rows + [{"kind": "BROKEN", **b} for b in broken], indent=2))
        return 0
    print(format_table(rows, ["kind", "name", "plugin", "distribution", "class"]))
    if broken:
        print(f"\nBROKEN PLUGINS (left out; every other command refuses to run until each is fixed, uninstalled "
              f"or named in ${DISABLE_PLUGINS_ENV}):")
        print(format_table(broken, ["entry_point", "distribution", "error"]))
    return 0
