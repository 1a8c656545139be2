"""``meta_train``: meta-train a learned optimizer on a task, resumably.

One meta-step (every particle, both antithetic branches, the whole
truncation, the outer clip + AdamW update) is one ``eqx.filter_jit``
function, :func:`make_meta_step`. The host loop around it draws nothing
random itself (the key of step ``n`` is ``fold_in(run_key, n)``), appends the
returned metrics to ``metrics.jsonl``, calls the ``lofw_log_metrics`` hook,
updates the progress bar and writes checkpoints.

Run folder (``out``)::

    config.json      the resolved MetaTrainConfig and its trajectory fingerprint
    metrics.jsonl    one JSON object per meta-step (format below)
    checkpoint.eqx   the latest checkpoint (lofw.checkpoint; written atomically)
    status.json      {"status", "step", "meta_steps", "fingerprint"}

``metrics.jsonl`` lines (deterministic: a resumed run writes exactly the
lines an uninterrupted one would)::

    {"step": 12,              # meta-steps completed (1-based)
     "meta_loss": 1.73,       # mean over particles of the truncation's mean
                              # normalised training loss (PES/ES: mean of +/-)
     "grad_norm": 0.41,       # global norm of the meta-gradient, before clipping
     "nan_grads": 0,          # meta-gradient entries that were NaN/inf, zeroed
     "resets": 1,             # particles whose inner episode ended this step
     "theta_norm": 3.2}       # global norm of the meta-parameters after the update

``status.json`` ``status`` is ``"running"`` while a process works on the
folder, ``"stopped"`` after ``stop_after`` steps, ``"interrupted"`` after
Ctrl-C (a checkpoint is written first), ``"finished"`` once ``meta_steps``
are done. Calling :func:`meta_train` again on the folder resumes from the
checkpoint (a finished run returns at once); a larger ``meta_steps``
continues a finished run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from lofw.base_optimizer import AbstractOptimizer
from lofw.meta_config import MetaTrainConfig
from lofw.registry import Registry

Status = Literal["finished", "stopped", "interrupted"]


@dataclasses.dataclass(frozen=True)
class MetaTrainResult:
    """What :func:`meta_train` returns.

    Attributes:
        status: ``"finished"`` (all ``meta_steps`` done) or ``"stopped"``
            (``stop_after`` reached; call again to continue).
        step: meta-steps completed so far (over every invocation).
        optimizer: the learned optimizer with the current meta-parameters.
        config: the resolved run configuration.
        run_dir: the run folder, or None for an in-memory run.
        metrics: every metrics line of the run so far (as in ``metrics.jsonl``).
    """

    status: Status
    step: int
    optimizer: AbstractOptimizer
    config: MetaTrainConfig
    run_dir: Path | None
    metrics: list[dict[str, Any]]


def meta_train(
    config: MetaTrainConfig | dict[str, Any] | None = None,
    /,
    *,
    out: str | Path | None = None,
    registry: Registry | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    **overrides: Any,
) -> MetaTrainResult:
    """Meta-train a learned optimizer (PES by default; paper Appendix B).

    Args:
        config: the run (:class:`MetaTrainConfig` or a mapping of its keys);
            None = defaults.
        out: the run folder. Created if absent; if it holds a run with the
            same trajectory fingerprint, that run is resumed; a run of a
            different config is refused (:class:`lofw.ConfigError`, nothing
            written). None = in-memory run: no files, no checkpoints.
        registry: where recipe, task and estimator names are looked up
            (default: the project's ``registry.yaml``).
        progress: show a tqdm progress bar (stderr) with the meta-loss and
            the speed.
        stop_after: run at most this many meta-steps in this call, then
            checkpoint and return with status ``"stopped"``.
        **overrides: top-level keys of :class:`MetaTrainConfig` overriding
            ``config`` (``meta_train(recipe="star", task="digits_mlp",
            meta_steps=20, estimator={"particles": 4})``; a mapping given for
            ``estimator`` or ``outer`` is merged into the existing one).

    Returns:
        A :class:`MetaTrainResult`.

    Raises:
        ConfigError: unknown recipe / task / estimator, bad key or value,
            horizon shorter than the truncation, or ``out`` holding a run of
            another config (all raised before anything is compiled or written).
        KeyboardInterrupt: re-raised after a checkpoint is written.
    """
    raise NotImplementedError("meta_train: being implemented")
