"""What one meta-training run writes as it goes: metrics lines, checkpoints, status.

:class:`RunWriter` is the host side of a run's loop, shared by a run alone
(:func:`lofw.meta.training.meta_train`) and by each member of a population
(:func:`lofw.meta.population.meta_train_population`): it turns a meta-step's
metrics into the run's ``metrics.jsonl`` line (checking that the
meta-parameters are finite and counting dead meta-steps), calls the
``lofw_log_metrics`` hook, checkpoints every ``checkpoint_every`` meta-steps
and writes ``status.json``. ``run_dir=None`` is an in-memory run: the lines
are kept, nothing is written. With several processes only process 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from lofw.errors import RunFailed, WriteFailed
from lofw.meta import health
from lofw.meta.checkpoint import CHECKPOINT, METRICS, STATUS, TrainingState, save_checkpoint
from lofw.meta.config import MetaTrainConfig
from lofw.plugin_manager import get_plugin_manager
from lofw.runtime import distributed
from lofw.runtime.compile import fast_math
from lofw.runtime.disk import write_failed, write_json


def writes() -> bool:
    """True in the process that writes files: process 0 (:func:`lofw.runtime.distributed.is_writer`)."""
    return jax.process_index() == 0


def to_host(metrics: dict[str, Any], step: int) -> dict[str, Any]:
    """A meta-step's metrics as the run's metrics line for meta-step ``step`` (Python numbers)."""
    host = distributed.to_host(metrics)  # jax.device_get; with several processes, their global values
    line: dict[str, Any] = {"step": step}
    for k, v in host.items():
        line[k] = int(v) if jnp.issubdtype(v.dtype, jnp.integer) else float(v)
    for k in [k for k in line if k.startswith("meta_loss.") and math.isnan(line[k])]:
        del line[k]  # a mixture's member that this meta-step did not train
    return line


class RunWriter:
    """The files of one run while its loop runs (module docstring).

    Use it as a context manager around the loop (it holds ``metrics.jsonl``
    open for appending), :meth:`record` each meta-step's line, then
    :meth:`finish`, :meth:`interrupted` or :meth:`failed`.
    """

    def __init__(self, run_dir: Path | None, config: MetaTrainConfig, metrics: list[dict[str, Any]],
                 start: int, particles: int):
        self.run_dir = run_dir
        self.config = config
        self.metrics = metrics
        self.particles = particles
        self.last_saved = start
        self.streak = metrics[-1].get("dead_steps", 0) if metrics else 0
        self._files = contextlib.ExitStack()
        self._file = None
        self._hook = get_plugin_manager().hook.lofw_log_metrics

    def __enter__(self) -> RunWriter:
        if self.run_dir is not None and writes():
            self._file = self._files.enter_context(open(self.run_dir / METRICS, "a"))
        self.status("running", self.last_saved)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._files.close()
        self._file = None

    def record(self, line: dict[str, Any]) -> None:
        """Check ``line`` (:func:`lofw.meta.health.check_finite` raises :class:`RunFailed`),
        add its ``dead_steps`` and append it to ``metrics.jsonl``; then call the hook."""
        health.check_finite(line)
        self.streak = line["dead_steps"] = health.dead_steps(self.streak, line, self.particles)
        self.metrics.append(line)
        if self._file is not None:
            try:
                self._file.write(json.dumps(line) + "\n")
                self._file.flush()
            except OSError as e:
                raise write_failed(self.run_dir / METRICS, e) from None
        if writes():
            self._hook(run_dir=str(self.run_dir) if self.run_dir is not None else "", step=line["step"],
                       metrics=dict(line))

    def after_step(self, state: TrainingState) -> None:
        """Checkpoint ``state`` (the state after the line just recorded) on the ``checkpoint_every`` cadence."""
        step = int(state.step)
        if self.run_dir is not None and step % self.config.checkpoint_every == 0:
            self.checkpoint(state)

    def checkpoint(self, state: TrainingState) -> None:
        if self.run_dir is None:
            return
        step = int(state.step)
        if jax.process_count() > 1:  # a collective: every process gathers, process 0 writes
            state = distributed.to_host(state)
            if not writes():
                self.last_saved = step
                return
        header = {
            "step": int(state.step),
            "fingerprint": self.config.trajectory_fingerprint(),
            "recipe": self.config.recipe,
            "meta_parameters": int(sum(x.size for x in jax.tree_util.tree_leaves(state.theta))),
        }
        save_checkpoint(self.run_dir, state, header)
        self.last_saved = step  # (only once it is on disk: an interrupt during the write checkpoints again)

    def status(self, status: str, step: int, **extra: Any) -> None:
        if self.run_dir is not None and writes():
            write_json(
                self.run_dir / STATUS,
                {"status": status, "step": step, "meta_steps": self.config.meta_steps,
                 "fingerprint": self.config.trajectory_fingerprint(),
                 **({"fast_math": True} if fast_math() else {}), **extra},
                sort_keys=True,
            )

    def finish(self, state: TrainingState) -> tuple[str, str | None]:
        """Checkpoint ``state`` unless it is on disk; write the final status.

        Returns the status (``"finished"`` or ``"stopped"``) and the
        not-learning warning (:func:`lofw.meta.health.dead_warning`) or None.
        """
        step = int(state.step)
        status = "finished" if step >= self.config.meta_steps else "stopped"
        warning = health.dead_warning(self.streak, step)
        try:
            # (with several processes every process must take the same branch: the checkpoint is a collective)
            if step != self.last_saved or (self.run_dir is not None and (
                    jax.process_count() > 1 or not (self.run_dir / CHECKPOINT).exists())):
                self.checkpoint(state)
            self.status(status, step, **({"dead_steps": self.streak} if warning else {}))
        except WriteFailed as e:
            self.failed(state, e, checkpoint=False)
            raise
        return status, warning

    def interrupted(self, state: TrainingState) -> None:
        """Ctrl-C: checkpoint ``state`` unless it is on disk, mark the run ``interrupted``."""
        if int(state.step) != self.last_saved:
            self.checkpoint(state)
        self.status("interrupted", int(state.step))

    def failed(self, state: TrainingState, error: RunFailed, checkpoint: bool | None = None) -> None:
        """Record a failed run: checkpoint ``state`` (unless a write is what failed) and mark it ``failed``.

        ``checkpoint=None``: when ``state`` is not on disk yet. Each write is
        tried on its own: on a full disk the small status file may still fit.
        """
        if checkpoint is None:
            checkpoint = int(state.step) != self.last_saved
        if checkpoint and not isinstance(error, WriteFailed):
            with contextlib.suppress(WriteFailed):
                self.checkpoint(state)
        with contextlib.suppress(WriteFailed):
            self.status("failed", int(state.step), error=str(error))
