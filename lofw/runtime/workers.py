"""A pool of worker processes: each job one ``python -m lofw.cli.main ...``, its output in a log file."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Job:
    """One worker: its name, the arguments of ``python -m lofw.cli.main`` and the file its output is appended to."""

    name: str
    args: Sequence[str]
    log: Path


def cli_command(args: Sequence[str]) -> list[str]:
    """The command line of a lofw worker process: ``python -m lofw.cli.main ARGS``."""
    return [sys.executable, "-m", "lofw.cli.main", *args]


def run_workers(
    jobs: int,
    todo: Sequence[Job],
    on_done: Callable[[Job, int, float], None],
    *,
    should_start: Callable[[Job], bool] = lambda job: True,
    on_start: Callable[[Job, int], None] = lambda job, pid: None,
    poll_seconds: float = 0.2,
) -> None:
    """Run ``todo`` in at most ``jobs`` worker processes at a time, in order.

    ``should_start(job)`` is asked just before a job would start (False skips
    it); ``on_start(job, pid)`` and ``on_done(job, returncode, seconds)`` report.
    On any exit (an error, Ctrl-C) the workers still running are terminated.
    """
    pending = list(todo)
    running: dict[str, tuple[subprocess.Popen, Job, object, float]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                job = pending.pop(0)
                if not should_start(job):
                    continue
                job.log.parent.mkdir(parents=True, exist_ok=True)
                log = open(job.log, "a")
                proc = subprocess.Popen(cli_command(job.args), stdout=log, stderr=subprocess.STDOUT)
                running[job.name] = (proc, job, log, time.time())
                on_start(job, proc.pid)
            time.sleep(poll_seconds)
            for name, (proc, job, log, start) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[name]
                on_done(job, proc.returncode, time.time() - start)
    finally:
        for proc, _, log, _ in running.values():
            proc.terminate()
            log.close()
