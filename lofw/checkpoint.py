"""Run folders and checkpoints of meta-training.

A checkpoint (``checkpoint.eqx``) is one file: a JSON header line
(``format``, ``step``, ``fingerprint``, ``recipe``, ``meta_parameters``)
followed by the leaves of a :class:`TrainingState` in equinox's serialisation
(meta-parameters, outer-optimizer state, estimator state, run PRNG key,
step). It is written to a temporary file in the same folder, flushed,
fsync'ed and renamed over the old one (``os.replace`` is atomic on POSIX), so
a crash leaves either the previous checkpoint or the new one, never half of
one. Every other file of the folder is written the same way, except
``metrics.jsonl``, which is appended to and, on resume, cut back to the
lines of the checkpointed steps.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
from jaxtyping import Array, Int, PyTree, UInt32

from lofw.errors import ConfigError
from lofw.meta_config import NON_TRAJECTORY_FIELDS, MetaTrainConfig

CHECKPOINT = "checkpoint.eqx"
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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def save_checkpoint(run_dir: Path, state: TrainingState, header: dict[str, Any]) -> None:
    """Atomically write ``state`` with ``header`` (module docstring)."""
    buffer = io.BytesIO()
    buffer.write((json.dumps({"format": FORMAT, **header}, sort_keys=True) + "\n").encode())
    eqx.tree_serialise_leaves(buffer, state)
    atomic_write_bytes(Path(run_dir) / CHECKPOINT, buffer.getvalue())


def read_checkpoint_header(run_dir: Path) -> dict[str, Any] | None:
    """The header of the folder's checkpoint, or None when there is none."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return json.loads(f.readline())


def load_checkpoint(run_dir: Path, like: TrainingState) -> tuple[TrainingState, dict[str, Any]]:
    """Read the folder's checkpoint into the structure of ``like``.

    Raises:
        ConfigError: the checkpoint does not fit ``like`` (another recipe or
            estimator wrote it).
    """
    path = Path(run_dir) / CHECKPOINT
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        try:
            state = eqx.tree_deserialise_leaves(f, like)
        except Exception as e:  # noqa: BLE001 - shape/structure mismatch of any kind
            raise ConfigError(
                f"{path}: the checkpoint does not match this run's optimizer/estimator "
                f"(written for recipe {header.get('recipe')!r}): {e}"
            ) from None
    return state, header


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


def prepare_run_dir(out: str | Path, config: MetaTrainConfig) -> bool:
    """Create or check a run folder; True when it holds a run to resume.

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
        if stored["config"] != data["config"]:
            atomic_write_json(config_path, data)
        return (run_dir / CHECKPOINT).exists()
    if run_dir.exists() and any(p for p in run_dir.iterdir() if not p.name.startswith(".")):
        raise ConfigError(
            f"{run_dir}: folder is not empty and holds no lofw run ({CONFIG} missing); "
            "choose another output folder. Nothing was written."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config_path, data)
    return False


def read_metrics(run_dir: Path, upto_step: int | None = None) -> list[dict[str, Any]]:
    """The metrics lines of a run (only ``step <= upto_step`` if given).

    With ``upto_step``, the file is also cut back to those lines (atomically),
    dropping lines of steps done after the last checkpoint, so that a resumed
    run appends exactly what an uninterrupted one would have written.
    """
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    lines = []
    for raw in path.read_text().splitlines():
        if not raw.strip():
            continue
        try:
            lines.append(json.loads(raw))
        except ValueError:
            break  # a torn last line from a crash
    if upto_step is not None:
        kept = [m for m in lines if m.get("step", 0) <= upto_step]
        if len(kept) != len(lines) or path.read_text().count("\n") != len(kept):
            atomic_write_bytes(path, "".join(json.dumps(m) + "\n" for m in kept).encode())
        lines = kept
    return lines
