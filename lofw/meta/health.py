"""Whether a meta-training run is learning: the checks that make a dead run fail loudly.

Two conditions, checked on each meta-step's metrics line on the host:

- **Non-finite meta-parameters** (``theta_norm`` is inf or NaN) stop the run
  at once: :func:`check_finite` raises :class:`~lofw.errors.RunFailed`, the
  state before that step is the one checkpointed, and the command exits with
  status 3.
- **A dead meta-gradient**: a meta-step whose meta-gradient is exactly zero,
  or in which every particle's inner run sat at the task's largest meta-loss
  (``diverged == particles``: every particle diverged, so the antithetic
  branches see the same clipped loss and the estimate carries nothing).
  The run goes on, but each metrics line carries ``dead_steps``, the number
  of consecutive dead meta-steps ending at it, and a run that ends with at
  least :data:`DEAD_STEPS` of them says so in its final line and in a grid's
  report.
"""

from __future__ import annotations

import math
from typing import Any

from lofw.errors import RunFailed

#: Consecutive dead meta-steps from which a run is reported as not learning.
DEAD_STEPS = 10


def is_dead(line: dict[str, Any], particles: int) -> bool:
    """True when this meta-step's estimate carried nothing (zero meta-gradient or every particle diverged)."""
    return line.get("grad_norm") == 0.0 or line.get("diverged", 0) >= particles


def dead_steps(previous: int, line: dict[str, Any], particles: int) -> int:
    """The dead-step streak after ``line`` (``previous`` is the streak before it)."""
    return previous + 1 if is_dead(line, particles) else 0


def check_finite(line: dict[str, Any]) -> None:
    """Raise :class:`RunFailed` when the meta-parameters after this step are not finite."""
    if math.isfinite(line["theta_norm"]):
        return
    raise RunFailed(
        f"meta-step {line['step']}: the meta-parameters became non-finite (theta_norm {line['theta_norm']}, "
        f"meta-gradient norm {line['grad_norm']:.4g} before clipping); the run stopped and keeps step "
        f"{line['step'] - 1}. Likely cause: an outer learning rate or weight decay too large for this recipe"
    )


def dead_warning(streak: int, step: int) -> str | None:
    """The sentence a run's final line gets when it ends with ``streak`` dead meta-steps, else None."""
    if streak < DEAD_STEPS:
        return None
    return (f"not learning: the last {streak} meta-steps (since step {step - streak + 1}) had a zero "
            "meta-gradient or every particle diverged; likely cause: an outer learning rate too large, "
            "or a recipe whose inner runs all diverge on this task")
