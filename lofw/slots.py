"""The slots of a composed learned optimizer and the network heads its components read (JAX-free).

Shared by :class:`lofw.LearnedOptimizer`, the recipes and :mod:`lofw.torch`.
"""

from __future__ import annotations

from typing import Any

#: Recipe slot -> component kind.
SLOTS: dict[str, str] = {
    "features": "features",
    "nominal": "nominal",
    "network": "network",
    "preconditioner": "preconditioner",
    "nominal_magnitude": "magnitude",
    "blackbox_magnitude": "magnitude",
}

#: Head names the learned optimizer asks networks for.
DIRECTION = "direction"
BLACKBOX_MAGNITUDE = "blackbox_magnitude"
NOMINAL_MAGNITUDE = "nominal_magnitude"


def required_heads(nominal: Any | None, nominal_magnitude: Any | None, blackbox_magnitude: Any | None) -> tuple[str, ...]:
    """The network heads a combination of components reads, in a fixed order (magnitudes state ``uses_head``)."""
    heads = []
    if blackbox_magnitude is not None:
        heads.append(DIRECTION)
        if blackbox_magnitude.uses_head:
            heads.append(BLACKBOX_MAGNITUDE)
    if nominal is not None and nominal_magnitude is not None and nominal_magnitude.uses_head:
        heads.append(NOMINAL_MAGNITUDE)
    return tuple(heads)
