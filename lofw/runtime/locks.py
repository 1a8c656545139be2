"""One writer per folder: an OS file lock held while a process works on it.

A run folder is locked while it is meta-trained, a grid cell while it is run.
The lock is ``fcntl.flock`` on ``<folder>/.lock``: the kernel drops it when
the process dies, however it dies, so a killed run never leaves a stale lock.
The file holds the holder's process id, for the message a second process
gets; it is removed on release.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from lofw.errors import LofwError

LOCK = ".lock"


class FolderBusyError(LofwError):
    """Another process holds the folder's lock.

    Attributes:
        folder: the locked folder.
        pid: the holder's process id (None if it could not be read).
    """

    def __init__(self, folder: Path, pid: int | None, what: str):
        self.folder, self.pid = Path(folder), pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"{folder}: {what} is in use by {holder} (lock file {Path(folder) / LOCK}); "
            f"wait for it to finish, or stop it{f' (kill {pid})' if pid is not None else ''} and run again"
        )


def _holder(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _acquire(folder: Path) -> int | None:
    """The locked descriptor, or None when another process holds the lock."""
    path = Path(folder) / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # the holder before us may have removed the file between our open and
        # our lock: then we hold a lock on a dead inode; start again
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "the folder") -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (which must exist) for the block.

    Raises:
        FolderBusyError: another process holds it (the message names its PID).
    """
    folder = Path(folder)
    fd = _acquire(folder)
    if fd is None:
        raise FolderBusyError(folder, _holder(folder / LOCK), what)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(folder / LOCK)  # still held: nobody can take it between unlink and close
        os.close(fd)


def lock_holder(folder: str | Path) -> int | None:
    """The PID of another process holding ``folder``'s lock, or None if it is free.

    Returns -1 when the lock is held but the holder's PID is unreadable.
    """
    path = Path(folder) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(path)
        return pid if pid is not None else -1
    finally:
        os.close(fd)
    return None
