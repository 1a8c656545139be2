"""``lofw``: the command-line entry point.

Each sub-command lives in its own module of :mod:`lofw.cli`, imported only
when used, and exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Errors meant for people print one message to stderr, without a traceback;
the exit statuses are :data:`EXIT_STATUSES` (also in ``lofw --help``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from lofw.errors import LofwError, RunFailed
from lofw.runtime.signals import Terminated, stop_signals_interrupt

#: sub-command -> (module in lofw.cli, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("plugins", "list the registered components and the plugins that provide them"),
    "registry": ("registry", "list the recipes, tasks, grids and suites of registry.yaml"),
    "meta-train": ("meta_train", "meta-train a learned optimizer on a task"),
    "evaluate": ("evaluate", "train fresh task instances with a trained optimizer"),
    "ablate": ("ablate", "run an ablation grid (resumable)"),
    "generalize": ("generalize", "evaluate optimizers on a task suite against tuned baselines (resumable)"),
    "report": ("report", "plots and summary table of a grid run"),
    "pretrained": ("pretrained", "list the pretrained optimizers with their model cards; export one from a grid"),
    "nqm": ("nqm", "the noisy quadratic model: stability checks and figures"),
}


#: What each exit status of ``lofw`` means.
EXIT_STATUSES = """\
exit status:
  0    success (a run that is not learning still exits 0, with a warning in its last line)
  1    an internal error: a bug in lofw or a plugin (a traceback is printed; please report it)
  2    bad input: a file, name, option or value; one message says where (nothing was run or written)
  3    a run failed: non-finite meta-parameters, or a file could not be written (a full disk); the
       last good checkpoint is kept and the run is marked failed
  130  interrupted by Ctrl-C; 128+N stopped by signal N (SIGTERM: 143); a checkpoint is written and a
       rerun resumes
  141  the reader of the output went away (a closed pipe)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse already exits 2; keep it to one line
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _available() -> dict[str, tuple[str, str]]:
    return {
        name: (module, help_)
        for name, (module, help_) in COMMANDS.items()
        if importlib.util.find_spec(f"lofw.cli.{module}") is not None
    }


def printable(error: BaseException) -> str:
    """The message with every character that does not print (a key read from a file may hold a
    line separator or a terminal escape) written as its escape, so each line stays one line."""
    return "\n".join("".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
                     for line in str(error).split("\n"))


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lofw", description="Build, meta-train and ablate learned optimizers in JAX.",
                     epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module, help_) in _available().items():
        p = sub.add_parser(name, help=help_, description=help_, epilog=EXIT_STATUSES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod = importlib.import_module(f"lofw.cli.{module}")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        with stop_signals_interrupt():
            return int(args._run(args) or 0)
    except RunFailed as e:
        print(f"lofw {args.command}: failed: {printable(e)}", file=sys.stderr)
        return 3
    except LofwError as e:
        print(f"lofw {args.command}: error: {printable(e)}", file=sys.stderr)
        return 2
    except Terminated as e:  # a scheduler's stop signal, handled as Ctrl-C (lofw.runtime.signals)
        print(f"lofw {args.command}: stopped by {e.name}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print(f"lofw {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`lofw ablate NAME --dry-run | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
