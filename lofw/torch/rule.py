"""The update rule of a :class:`lofw.LearnedOptimizer`, rebuilt in PyTorch from a portable spec.

The same composition as ``lofw/learned_optimizer.py``, per parameter tensor::

    nominal  = b1 * nominal_magnitude(h_nom) * nominal.direction(stats)
    blackbox = b3 * preconditioner.apply(h_dir, stats) * blackbox_magnitude(h_bb)
    update   = -(nominal + blackbox)

computed in float32 and cast to the parameter's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lofw.errors import ConfigError
from lofw.slots import BLACKBOX_MAGNITUDE, DIRECTION, NOMINAL_MAGNITUDE, SLOTS, required_heads
from lofw.torch.components import lookup


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    return value


def _decode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(value, dict):
        name = value.get("array")
        if set(value) != {"array"} or name not in arrays:
            raise ConfigError(f"{where}: {value!r} names no array of the file")
        return torch.from_numpy(np.array(arrays[name], dtype=np.float32))
    if isinstance(value, list):
        return [_decode(v, arrays, where) for v in value]
    return value


class UpdateRule:
    """The components of one learned optimizer, in PyTorch, and its per-tensor update.

    Args:
        spec: the ``optimizer`` entry of a portable file.
        arrays: its arrays by name.

    Raises:
        PluginError: a component has no PyTorch implementation (the message
            names the hook that adds one).
        ConfigError: the spec is malformed, or a component refuses its fields.
    """

    def __init__(self, spec: dict[str, Any], arrays: dict[str, np.ndarray]):
        self._fields: dict[str, tuple[type, dict[str, Any]] | None] = {}
        for slot, kind in SLOTS.items():
            entry = spec.get(slot)
            if entry is None:
                self._fields[slot] = None
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("component"), str):
                raise ConfigError(f"optimizer.{slot}: expected {{component: NAME, fields: {{...}}}}, got {entry!r}")
            cls = lookup(kind, entry["component"], slot)
            self._fields[slot] = (cls, {k: _decode(v, arrays, f"optimizer.{slot}.{k}")
                                        for k, v in entry.get("fields", {}).items()})
        self._by_device: dict[torch.device, dict[str, Any]] = {}
        self.components = self.on(torch.device("cpu"))
        log_scale = _decode(spec.get("nominal_log_scale"), arrays, "optimizer.nominal_log_scale")
        self.nominal_scale = (float(spec["nominal_scale_init"]) * torch.exp(log_scale)
                              if self.components["nominal"] is not None else None)
        self.blackbox_scale = float(spec["blackbox_scale"])
        self._check_heads()

    def on(self, device: torch.device) -> dict[str, Any]:
        """The components with their meta-parameters on ``device`` (built once per device)."""
        if device not in self._by_device:
            built: dict[str, Any] = {}
            for slot, entry in self._fields.items():
                if entry is None:
                    built[slot] = None
                    continue
                cls, fields = entry
                try:
                    built[slot] = cls(**{k: _to(v, device) for k, v in fields.items()})
                except (TypeError, ValueError) as e:
                    raise ConfigError(f"optimizer.{slot}: the torch {SLOTS[slot]} {cls.__name__} refused its "
                                      f"fields: {e}") from None
            self._by_device[device] = built
        return self._by_device[device]

    def _check_heads(self) -> None:
        c = self.components
        heads = required_heads(c["nominal"], c["nominal_magnitude"], c["blackbox_magnitude"])
        if c["features"] is None or (c["nominal"] is None and c["blackbox_magnitude"] is None):
            raise ConfigError("optimizer: needs features and a nominal or a blackbox term")
        missing = [h for h in heads if c["network"] is None or h not in c["network"].heads]
        if missing:
            raise ConfigError(f"optimizer: the components read the network heads {missing}, which the network lacks")
        self.heads = heads

    def init(self, param: torch.Tensor) -> dict[str, torch.Tensor]:
        """The float32 accumulators of one tensor, on its device."""
        return self.on(param.device)["features"].init(param)

    def update(self, grad: torch.Tensor, param: torch.Tensor, state: dict[str, torch.Tensor], step: int,
               loss: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(update, new_state)`` of one tensor; add ``update`` to the parameter."""
        c = self.on(param.device)
        dtype = param.dtype
        grad32, param32 = grad.float(), param.float()
        state, stats, inputs = c["features"].update(grad32, param32, state, step, loss)
        heads = c["network"](inputs) if c["network"] is not None and self.heads else {}
        step_size = torch.zeros_like(param32)
        if c["nominal"] is not None:
            scale = self.nominal_scale.to(param32.device)
            if c["nominal_magnitude"] is not None:
                scale = scale * c["nominal_magnitude"](heads.get(NOMINAL_MAGNITUDE))
            step_size = step_size + scale * c["nominal"].direction(stats)
        if c["blackbox_magnitude"] is not None:
            direction = heads[DIRECTION]
            if c["preconditioner"] is not None:
                direction = c["preconditioner"].apply(direction, stats)
            magnitude = c["blackbox_magnitude"](heads.get(BLACKBOX_MAGNITUDE))
            step_size = step_size + self.blackbox_scale * direction * magnitude
        return (-step_size).to(dtype), state

