"""``lofw plugins``: the registered components and who registered them."""

from __future__ import annotations

import argparse
import json

from lofw.plugin_manager import component_infos


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
        for info in component_infos(kind)
    ]


def format_table(rows: list[dict[str, str]], columns: list[str]) -> str:
    """A plain aligned text table."""
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    rows = _rows(args.kind)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows, ["kind", "name", "plugin", "distribution", "class"]))
    return 0
