"""Stop signals: what a scheduler sends before it kills a job is handled as Ctrl-C is.

``SIGTERM`` (sent by Slurm, Kubernetes or ``kill`` before a job is killed) and
the signals named in ``$LOFW_STOP_SIGNALS`` (comma-separated, e.g. ``USR1``
for Slurm's ``--signal=USR1@120`` early warning) raise :class:`Terminated`, a
``KeyboardInterrupt``: meta-training writes a checkpoint at the current step
and marks the run ``interrupted``, a grid cell is left to resume, worker
processes are stopped the same way, and rerunning the command resumes exactly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator

from lofw.errors import ConfigError

#: Environment variable naming extra stop signals (``USR1,USR2``), beside ``SIGTERM``.
STOP_SIGNALS_ENV = "LOFW_STOP_SIGNALS"


class Terminated(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def stop_signals() -> list[signal.Signals]:
    """``SIGTERM`` and the signals of ``$LOFW_STOP_SIGNALS``.

    Raises:
        ConfigError: a name in ``$LOFW_STOP_SIGNALS`` that is not a signal.
    """
    found = [signal.SIGTERM]
    for name in filter(None, (n.strip().upper() for n in os.environ.get(STOP_SIGNALS_ENV, "").split(","))):
        name = name if name.startswith("SIG") else f"SIG{name}"
        try:
            sig = signal.Signals[name]
        except KeyError:
            valid = ", ".join(s.name for s in signal.Signals)
            raise ConfigError(f"${STOP_SIGNALS_ENV}: unknown signal {name!r}; valid choices: {valid}") from None
        if sig not in found:
            found.append(sig)
    return found


def _raise(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, a stop signal raises :class:`Terminated`; the previous handlers come back after.

    Outside the main thread (where Python cannot install handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in stop_signals()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
