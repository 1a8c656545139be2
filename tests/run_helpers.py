"""Helpers shared by the tests of run folders and grids: a short meta-train command line,
and a process that holds a folder's lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# the meta-step of test_meta_train (compiled once per session), with a checkpoint every 2 meta-steps
META_TRAIN_ARGS = ["star", "--task", "digits_mlp", "--estimator", "pes", "--truncation", "10", "--particles", "8",
                   "--lr", "0.01", "--horizon", "20", "--seed", "0", "--checkpoint-every", "2", "--no-progress",
                   "--no-compile-cache"]

HOLDER = textwrap.dedent("""
    import sys, time
    from lofw.runtime.locks import folder_lock
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def hold_lock(folder: Path) -> subprocess.Popen:
    """A process holding ``folder``'s lock (kill it to release the lock)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc
