"""Every option of every ``lofw`` command appears in a test that runs it (a house rule:
a documented flag that only ever gets parsed is how a broken option ships)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lofw.cli.main import make_parser

TESTS = Path(__file__).resolve().parent


def _options(parser: argparse.ArgumentParser, name: str = "lofw"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _options(child, f"{name} {sub}")
        else:
            yield from ((name, opt) for opt in action.option_strings if opt not in ("-h", "--help"))


def test_every_command_line_option_is_given_in_some_test():
    text = "\n".join(p.read_text() for p in TESTS.glob("*.py") if p.name != Path(__file__).name)
    unused = [f"{command} {opt}" for command, opt in _options(make_parser())
              if not re.search(rf"""["']{re.escape(opt)}["'=]|["'][^"'\n]*{re.escape(opt)}[ =]""", text)]
    assert not unused, f"options no test gives: {unused}"
