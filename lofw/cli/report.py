"""``lofw report OUT``: plots and the summary table of a grid run (also written
at the end of every ``lofw ablate``)."""

from __future__ import annotations

import argparse

from lofw.grid.report import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="the output folder of `lofw ablate`")


def run(args: argparse.Namespace) -> int:
    folder = write_report(args.out)
    text = (folder / "summary.md").read_text()
    print(text.split("## Plots")[0].rstrip())
    print(f"\nreport written to {folder}: summary.md, summary.csv, "
          + ", ".join(sorted(p.name for p in folder.glob("*.png"))))
    return 0
