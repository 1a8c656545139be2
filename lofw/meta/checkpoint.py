"""Run folders and checkpoints of meta-training.

A checkpoint (``checkpoint.eqx``) is one file: a JSON header line
(``format``, ``step``, ``fingerprint``, ``recipe``, ``meta_parameters``, and
the size and SHA-256 of what follows, ``bytes`` and ``sha256``)
followed by the leaves of a :class:`TrainingState` in equinox's serialisation
(meta-parameters, outer-optimizer state, estimator state, run PRNG key,
step). It is written to a temporary file in the same folder, flushed,
fsync'ed and renamed over the old one (``os.replace`` is atomic on POSIX), so
a crash leaves either the previous checkpoint or the new one, never half of
one. The checkpoint it replaces is kept as ``checkpoint.prev.eqx``: when
the latest one is damaged (a disk that lied about fsync, a file cut short
by hand), :func:`load_checkpoint` warns and resumes from the previous one;
when none is usable it stops with a message naming the files, and writes
nothing. Every other file of the folder is written the same way, except
``metrics.jsonl``, which is appended to and, on resume, cut back to the
lines of the checkpointed steps (a damaged line before that point stops the
run with a message; a torn last line from a crash is dropped).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import equinox as eqx
from jaxtyping import Array, Int, PyTree, UInt32

from lofw.errors import ConfigError
from lofw.meta.config import NON_TRAJECTORY_FIELDS, MetaTrainConfig
from lofw.runtime.disk import atomic_write_bytes, write_json

CHECKPOINT = "checkpoint.eqx"
#: The checkpoint before the latest one, kept as a fallback.
PREVIOUS = "checkpoint.prev.eqx"
CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
FORMAT = 1


class TrainingState(eqx.Module):
    """Everything a resumed run needs.

    Attributes:
        theta: the meta-parameters (``eqx.filter(opt, eqx.is_inexact_array)``).
        outer_state: the optax state of the outer optimizer.
        estimator_state: the estimator's particle states.
        key: the run's PRNG key; the key of meta-step ``n`` is ``fold_in(key, n)``.
        step: meta-steps completed.
    """

    theta: PyTree
    outer_state: Any
    estimator_state: Any
    key: UInt32[Array, "2"]
    step: Int[Array, ""]


def save_checkpoint(run_dir: Path, state: TrainingState, header: dict[str, Any]) -> None:
    """Atomically write ``state`` with ``header`` (module docstring); the
    checkpoint it replaces becomes ``checkpoint.prev.eqx``."""
    body = io.BytesIO()
    eqx.tree_serialise_leaves(body, state)
    body = body.getvalue()
    integrity = {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    buffer = io.BytesIO()
    buffer.write((json.dumps({"format": FORMAT, **header, **integrity}, sort_keys=True) + "\n").encode())
    buffer.write(body)
    run_dir = Path(run_dir)
    tmp = run_dir / f".{CHECKPOINT}.new-{os.getpid()}"
    atomic_write_bytes(tmp, buffer.getvalue())
    try:
        if (run_dir / CHECKPOINT).exists():
            os.replace(run_dir / CHECKPOINT, run_dir / PREVIOUS)
        os.replace(tmp, run_dir / CHECKPOINT)
    finally:
        tmp.unlink(missing_ok=True)


def has_checkpoint(run_dir: Path) -> bool:
    """True when the folder holds a checkpoint (the latest or the previous one)."""
    return (Path(run_dir) / CHECKPOINT).exists() or (Path(run_dir) / PREVIOUS).exists()


def read_checkpoint_header(run_dir: Path) -> dict[str, Any] | None:
    """The header of the folder's checkpoint, or None when there is none or it is unreadable."""
    path = Path(run_dir) / CHECKPOINT
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) else None


class _Damaged(Exception):
    pass


def _read_one(path: Path, like: TrainingState) -> tuple[TrainingState, dict[str, Any]]:
    """One checkpoint file; ``_Damaged`` when it cannot be read, ConfigError
    when it is intact but written for another optimizer/estimator."""
    try:
        with open(path, "rb") as f:
            first = f.readline()
            try:
                header = json.loads(first)
            except ValueError:
                raise _Damaged("its header line is not valid JSON") from None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise _Damaged(f"its header is not a lofw checkpoint header of format {FORMAT}")
            body = f.read()
    except OSError as e:
        raise _Damaged(f"cannot read it: {e.strerror}") from None
    if "sha256" in header:  # (checkpoints of lofw before 0.1.1 carry no checksum)
        if len(body) != header.get("bytes"):
            raise _Damaged(f"it is cut short or padded ({len(body)} of {header.get('bytes')} bytes after the header)")
        if hashlib.sha256(body).hexdigest() != header["sha256"]:
            raise _Damaged("its contents do not match their checksum")
    try:
        state = eqx.tree_deserialise_leaves(io.BytesIO(body), like)
    except Exception as e:  # noqa: BLE001 - shape/structure mismatch of any kind
        raise ConfigError(
            f"{path}: the checkpoint does not match this run's optimizer/estimator "
            f"(written for recipe {header.get('recipe')!r}, or by a lofw whose optimizer state "
            f"is laid out differently): {e}. To start this run over, delete {path.parent}"
        ) from None
    return state, header


def load_checkpoint(run_dir: Path, like: TrainingState) -> tuple[TrainingState, dict[str, Any]]:
    """Read the folder's checkpoint into the structure of ``like``.

    A damaged latest checkpoint is moved aside (``checkpoint.eqx.damaged``)
    and the previous one is used, with a warning.

    Raises:
        ConfigError: the checkpoint does not fit ``like`` (another recipe or
            estimator wrote it), or no checkpoint of the folder is usable
            (nothing is changed on disk then).
    """
    run_dir = Path(run_dir)
    problems = []
    for name in (CHECKPOINT, PREVIOUS):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state, header = _read_one(path, like)
        except _Damaged as e:
            problems.append((path, str(e)))
            continue
        if problems:
            bad, why = problems[0]
            os.replace(bad, bad.with_name(bad.name + ".damaged"))
            atomic_write_bytes(run_dir / CHECKPOINT, path.read_bytes())
            warnings.warn(
                f"{bad} is damaged ({why}); moved it to {bad.name}.damaged and resumed from "
                f"{path.name} (meta-step {int(state.step)})",
                stacklevel=2,
            )
        return state, header
    if not problems:
        raise ConfigError(f"{run_dir}: no checkpoint ({CHECKPOINT}) in this run folder")
    listed = "; ".join(f"{p} is damaged: {why}" for p, why in problems)
    raise ConfigError(
        f"{listed}. No usable checkpoint is left, nothing was changed. Restore the file from a backup, "
        f"or delete the run folder {run_dir} (or choose another) to start the run over."
    )


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every dotted key that differs."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def prepare_run_dir(out: str | Path, config: MetaTrainConfig, update: bool = True) -> bool:
    """Create or check a run folder; True when it holds a run to resume.

    With ``update=False`` a resumed folder's ``config.json`` is left as it is
    (call :func:`update_run_config` once the checkpoint has been read).

    A new (or empty) folder gets ``config.json``. A folder with a
    ``config.json`` of the same trajectory fingerprint is resumed (its
    ``config.json`` is updated for ``meta_steps`` / ``checkpoint_every``).
    Anything else is refused before a file is touched.

    Raises:
        ConfigError: the folder holds a run of another config (the message
            lists the differing keys), or files that are not a lofw run.
    """
    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: exists and is not a folder; choose another --out")
    config_path = run_dir / CONFIG
    data = {"config": config.model_dump(mode="json"), "fingerprint": config.trajectory_fingerprint()}
    if config_path.exists():
        try:
            stored = json.loads(config_path.read_text())
            old_fingerprint, old_config = stored["fingerprint"], stored["config"]
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError(f"{config_path}: unreadable run config ({e}); not resuming, nothing written") from None
        if old_fingerprint != data["fingerprint"]:
            ignore = set(NON_TRAJECTORY_FIELDS)
            diffs = [d for d in config_differences(old_config, data["config"]) if d.split(":")[0] not in ignore]
            raise ConfigError(
                f"{run_dir}: holds a run of a different configuration ("
                + "; ".join(diffs or ["registry contents changed"])
                + "); use another output folder, or the original settings to resume it. Nothing was written."
            )
        if stored["config"] != data["config"] and update:
            write_json(config_path, data, sort_keys=True)
        return has_checkpoint(run_dir)
    if run_dir.exists() and any(p for p in run_dir.iterdir() if not p.name.startswith(".")):
        raise ConfigError(
            f"{run_dir}: folder is not empty and holds no lofw run ({CONFIG} missing); "
            "choose another output folder. Nothing was written."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(config_path, data, sort_keys=True)
    return False


def update_run_config(run_dir: Path, config: MetaTrainConfig) -> None:
    """Record new ``meta_steps`` / ``checkpoint_every`` of a resumed run in its ``config.json``."""
    path = Path(run_dir) / CONFIG
    data = {"config": config.model_dump(mode="json"), "fingerprint": config.trajectory_fingerprint()}
    try:
        same = json.loads(path.read_text()) == data
    except (OSError, ValueError):
        same = False
    if not same:
        write_json(path, data, sort_keys=True)


def read_metrics(run_dir: Path, upto_step: int | None = None) -> list[dict[str, Any]]:
    """The metrics lines of a run (only ``step <= upto_step`` if given).

    With ``upto_step``, the file is also cut back to those lines (atomically),
    dropping lines of steps done after the last checkpoint, so that a resumed
    run appends exactly what an uninterrupted one would have written.

    Raises:
        ConfigError: the file is damaged: a line other than the last is not a
            metrics line, or (with ``upto_step``) lines of checkpointed steps
            are missing. Nothing is changed on disk then.
    """
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    raws = [(n, raw) for n, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    lines = []
    for k, (n, raw) in enumerate(raws):
        try:
            line = json.loads(raw)
            if not isinstance(line, dict) or not isinstance(line.get("step"), int):
                raise ValueError("not a mapping with an integer `step`")
        except ValueError as e:
            if k == len(raws) - 1:
                break  # a torn last line from a crash
            raise ConfigError(_damaged_metrics(path, f"line {n} is not a metrics line ({e})")) from None
        lines.append(line)
    if upto_step is not None:
        kept = [m for m in lines if m["step"] <= upto_step]
        steps = [m["step"] for m in kept]
        # consecutive up to the checkpoint (a file moved aside by the user restarts the count)
        intact = steps == list(range(steps[0], upto_step + 1)) if steps else (
            upto_step == 0 or (bool(lines) and lines[0]["step"] == upto_step + 1))
        if not intact:
            have = f"meta-steps {kept[0]['step']}..{kept[-1]['step']} in {len(kept)} lines" if kept else "no complete line"
            raise ConfigError(_damaged_metrics(path, f"it holds {have}, but the checkpoint is at meta-step {upto_step}"))
        if len(kept) != len(lines) or text.count("\n") != len(kept):
            atomic_write_bytes(path, "".join(json.dumps(m) + "\n" for m in kept).encode())
        lines = kept
    return lines


def _damaged_metrics(path: Path, why: str) -> str:
    return (
        f"{path}: damaged: {why}. Nothing was changed. To resume without the lost lines, move the file "
        f"aside (mv {path} {path}.damaged) and run again; or start over in another folder."
    )
