"""A :class:`lofw.LearnedOptimizer` as a portable file (:mod:`lofw.portable`), for PyTorch.

Each slot's component is written as its registry name and its fields (the
equinox module's dataclass fields: static settings as JSON, arrays as named
NumPy arrays), so a runtime that has an implementation of each component
under the same name (:mod:`lofw.torch`) rebuilds the same update rule.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from lofw.errors import ConfigError
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.learned_optimizer import LearnedOptimizer
from lofw.plugin_manager import component_infos
from lofw.portable import portable_bytes
from lofw.runtime.disk import atomic_write_bytes
from lofw.slots import SLOTS


def _component_name(module: eqx.Module, kind: str) -> str:
    for info in component_infos(kind):
        if type(module) is info.cls:
            return info.name
    raise ConfigError(f"the {kind} {type(module).__qualname__} is not a registered component, so it has no "
                      f"name a portable file can give; register it with the lofw_register_components hook")


def _encode(value: Any, name: str, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(value, jax.Array | np.ndarray):
        arrays[name] = np.asarray(value)
        return {"array": name}
    if isinstance(value, tuple | list):
        return [_encode(v, f"{name}.{i}", arrays, where) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ConfigError(f"{where}: field {name!r} holds a {type(value).__name__}, which a portable file cannot hold "
                      "(JSON values, arrays and tuples of them only)")


def portable_parts(opt: AbstractOptimizer) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(spec, arrays)`` of ``opt`` in the layout of :mod:`lofw.portable`.

    Raises:
        ConfigError: ``opt`` is not a :class:`lofw.LearnedOptimizer`, or one of
            its components is not registered or holds a field of another type.
    """
    if not isinstance(opt, LearnedOptimizer):
        raise ConfigError(f"only a composed LearnedOptimizer can be exported to a portable file, not a "
                          f"{type(opt).__qualname__} (a whole `optimizer` component)")
    arrays: dict[str, np.ndarray] = {}
    spec: dict[str, Any] = {
        "nominal_scale_init": opt.nominal_scale_init,
        "blackbox_scale": opt.blackbox_scale,
        "nominal_log_scale": _encode(opt.nominal_log_scale, "nominal_log_scale", arrays, "the optimizer"),
    }
    for slot, kind in SLOTS.items():
        module = getattr(opt, slot)
        if module is None:
            spec[slot] = None
            continue
        name = _component_name(module, kind)
        where = f"{slot} component {name!r}"
        fields = {f.name: _encode(getattr(module, f.name), f"{slot}.{f.name}", arrays, where)
                  for f in dataclasses.fields(module)}
        spec[slot] = {"component": name, "fields": fields}
    return spec, arrays


def write_portable(opt: AbstractOptimizer, path: str | Path, card: dict[str, Any]) -> Path:
    """Write ``opt`` and ``card`` to the portable file ``path`` (atomically)."""
    spec, arrays = portable_parts(opt)
    path = Path(path)
    atomic_write_bytes(path, portable_bytes(spec, arrays, card))
    return path
