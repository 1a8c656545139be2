"""Files that a crash never leaves half-written.

Every write goes to a temporary file in the target's folder, is flushed and
fsync'ed, then renamed over the target (``os.replace`` is atomic on POSIX),
so a reader sees the old file or the new one, never part of either.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lofw.errors import ConfigError, WriteFailed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (creating its folder) via a temporary file and an atomic rename.

    Raises:
        WriteFailed: the operating system refused (a full disk, a quota): the
            message names ``path`` and the reason; ``path`` is as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise write_failed(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteFailed):
            raise write_failed(path, e) from None
        raise


def write_failed(path: Path, error: OSError) -> WriteFailed:
    """The :class:`WriteFailed` for ``path`` and the operating system's ``error``."""
    return WriteFailed(f"{path}: cannot write ({error.strerror or error}); the file it would replace is intact")


def standard_json(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by their names (``"nan"``, ``"inf"``), so the JSON stays standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: standard_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [standard_json(v) for v in obj]
    return obj


def write_json(path: Path, data: Any, *, sort_keys: bool = False) -> None:
    """Write ``data`` as indented, standard JSON (:func:`standard_json`) atomically."""
    text = json.dumps(standard_json(data), indent=2, sort_keys=sort_keys) + "\n"
    atomic_write_bytes(path, text.encode())


def write_npz(path: Path, **arrays: Any) -> None:
    """Write ``arrays`` as float32 into one ``.npz`` file atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    atomic_write_bytes(path, buffer.getvalue())


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSON-lines file (a torn last line is ignored)."""
    rows = []
    try:
        text = Path(path).read_text()
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def check_writable(folder: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output folder that cannot be created or written.

    Nothing is created: the nearest existing folder on the way to ``folder``
    must be a folder in which a file can be made (a probe file, removed at
    once), so a path under a file, a read-only place or a folder without
    write permission is reported with the operating system's reason. (A disk
    with room for an empty file but not for the results still fails later.)

    Raises:
        ConfigError: naming ``option``, the path and the reason.
    """
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{option} {folder}: {probe} exists and is not a folder; choose another {option}")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".lofw-write-check-")
    except OSError as e:
        raise ConfigError(f"{option} {folder}: cannot write in {probe}: {e.strerror}; choose another {option}") from None
    os.close(fd)
    os.unlink(tmp)
