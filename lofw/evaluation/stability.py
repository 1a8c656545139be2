"""Stability past the meta-training horizon, measured per training run.

The paper's claim (sections 5.2-5.3) is that STAR "stays stable" when it
trains for many more steps than it was meta-trained for. lofw measures it on
each run (one fresh task instance trained for ``steps > horizon`` steps) with
three numbers, all computed from the raw per-step training losses:

- ``worst_ratio``: ``max_{t >= H} s_t / s_{H-1}``, where ``s`` is the loss
  smoothed by an EMA with coefficient 0.98 (paper Appendix B.2) and ``H`` the
  meta-training horizon: the worst the smoothed loss gets after the horizon,
  relative to its value at the horizon. 1 means it never rose above its value
  at the horizon; ``inf`` when the smoothed loss became non-finite.
- ``steps_above_chance``: the number of steps ``t >= H`` whose raw loss is
  above the chance loss (the loss of a uniform guess, ``ln(classes)``), or
  non-finite. It counts time spent worse than not training at all.
- ``nonfinite``: the number of steps (anywhere in the run) with a NaN or
  infinite loss.

A run is *stable past the horizon* when ``worst_ratio <= STABLE_RATIO`` and
it has no non-finite loss (the criterion of lofw's ``star_stable`` issue:
the smoothed loss never exceeds twice its value at the horizon).
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: EMA coefficient of the smoothed loss (paper Appendix B.2).
EMA = 0.98
#: ``worst_ratio`` at or below which a run counts as stable past the horizon.
STABLE_RATIO = 2.0


def ema(x: np.ndarray, coefficient: float = EMA) -> np.ndarray:
    """``s_0 = x_0``, ``s_t = c s_{t-1} + (1 - c) x_t`` along the last axis (NaN propagates)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    if x.shape[-1] == 0:
        return out
    s = x[..., 0]
    for t in range(x.shape[-1]):
        s = coefficient * s + (1.0 - coefficient) * x[..., t] if t else x[..., 0]
        out[..., t] = s
    return out


@dataclasses.dataclass(frozen=True)
class Stability:
    """Per-run stability numbers (see the module docstring); arrays of shape ``[runs]``."""

    worst_ratio: np.ndarray
    steps_above_chance: np.ndarray
    nonfinite: np.ndarray

    @property
    def stable(self) -> np.ndarray:
        """Per run: ``worst_ratio <= STABLE_RATIO`` and no non-finite loss."""
        return (self.worst_ratio <= STABLE_RATIO) & (self.nonfinite == 0)


def stability(curves: np.ndarray, horizon: int, chance: float | None = None) -> Stability:
    """Stability numbers of ``curves`` (``[runs, steps]`` raw losses) past ``horizon``.

    Args:
        curves: raw training loss per run and step.
        horizon: the meta-training horizon ``H`` (``1 <= H <= steps``).
        chance: the chance loss; None gives ``steps_above_chance`` = NaN.
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    steps = curves.shape[1]
    if not 1 <= horizon <= steps:
        raise ValueError(f"horizon {horizon} outside the {steps} evaluated steps")
    finite = np.isfinite(curves)
    smoothed = ema(curves)
    after = smoothed[:, horizon - 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(after).all(axis=1), after.max(axis=1) / smoothed[:, horizon - 1], np.inf)
    tail, tail_finite = curves[:, horizon - 1:], finite[:, horizon - 1:]
    if chance is None:
        above = np.full(curves.shape[0], np.nan)
    else:
        above = (~tail_finite | (np.where(tail_finite, tail, 0.0) > chance)).sum(axis=1).astype(np.float64)
    return Stability(worst_ratio=ratio, steps_above_chance=above, nonfinite=(~finite).sum(axis=1))
