"""The hand-designed baselines every evaluation trains beside a learned optimizer.

- ``adam``: optax Adam, its learning rate picked from the half-decade grid
  :data:`LR_GRID` by the lowest mean normalised training loss on separate
  tuning seeds (the paper's "coarse search, half orders of magnitude",
  Appendix B.3).
- ``nadamw``: optax NAdamW (weight decay 1e-4), learning rate picked from the
  same grid in the same way (the paper tunes it with 1000 random trials;
  this is the affordable stand-in, :mod:`lofw.evaluation.nadamw_search` the closer one).

A baseline tuned for a shorter run than it is evaluated on is written
``NAME@N`` (tuned for the first ``N`` steps) or ``NAME@horizon`` (``N`` = the
meta-training horizon of the optimizer it is compared with).
"""

from __future__ import annotations

import equinox as eqx
import optax
from jaxtyping import Array, Float

from lofw.errors import ConfigError, choices
from lofw.interfaces.optimizer import AbstractOptimizer

#: Half-decade learning-rate grid of the Adam / NAdamW baselines.
LR_GRID: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
#: Baselines :func:`lofw.evaluate` knows.
BASELINES: tuple[str, ...] = ("adam", "nadamw")


def parse_baseline(spec: str, where: str = "baseline") -> tuple[str, int | str | None]:
    """``"adam"`` -> ``("adam", None)``, ``"adam@500"`` -> ``("adam", 500)``,
    ``"adam@horizon"`` -> ``("adam", "horizon")``: the optimizer and the number
    of steps its learning rate is tuned for (None: the whole evaluation).

    Raises:
        ConfigError: an unknown optimizer or a tuning length that is neither
            a positive integer nor ``horizon``.
    """
    name, at, tune = str(spec).partition("@")
    valid = f"valid choices: {choices(BASELINES)}, each optionally @N or @horizon (tuned for the first N steps)"
    if name not in BASELINES:
        raise ConfigError(f"{where}: unknown baseline {spec!r}; {valid}")
    if not at:
        return name, None
    if tune == "horizon":
        return name, "horizon"
    if tune.isdigit() and int(tune) > 0:
        return name, int(tune)
    raise ConfigError(f"{where}: bad baseline {spec!r}: the part after @ must be a positive integer or 'horizon'; {valid}")


class OptaxBaseline(AbstractOptimizer):
    """A hand-designed baseline as an :class:`lofw.AbstractOptimizer`.

    ``lr`` is an array field so that a grid of learning rates is one ``vmap``.
    """

    name: str = eqx.field(static=True)
    lr: Float[Array, ""]

    def _tx(self) -> optax.GradientTransformation:
        if self.name == "adam":
            return optax.adam(self.lr)
        return optax.nadamw(self.lr, weight_decay=1e-4)

    def init(self, params):
        return self._tx().init(params)

    def update(self, grads, state, params):
        return self._tx().update(grads, state, params)
