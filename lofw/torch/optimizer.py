"""``lofw.torch.LearnedOptimizer``: a lofw learned optimizer as a ``torch.optim.Optimizer``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from lofw.errors import ConfigError
from lofw.portable import read_portable, recipe_fingerprint
from lofw.torch.files import resolve_file
from lofw.torch.rule import UpdateRule

#: The key of :meth:`LearnedOptimizer.state_dict` that identifies the optimizer and the parameter layout.
STATE_KEY = "lofw"


class LearnedOptimizer(torch.optim.Optimizer):
    """A meta-trained lofw optimizer, stepping PyTorch parameters natively (no JAX).

    Every parameter tensor is updated by the rule of the portable file
    ``optimizer`` (a path, or the name of an optimizer lofw ships, such as
    ``"star_stable"``), exactly as :class:`lofw.LearnedOptimizer` updates a JAX
    array of the same shape: tests/test_torch_parity.py holds the two to 1e-5.
    The accumulators are float32 on each parameter's device, whatever the
    parameter's dtype; the update is computed in float32 and cast to it.

    A learned optimizer has no learning rate. A parameter group may set
    ``scale`` (default 1.0: the learned rule itself), a factor on its
    updates, for example 0.0 to freeze a group while keeping its statistics.

    Args:
        params: parameters or parameter groups, as for any ``torch.optim`` optimizer.
        optimizer: a portable file (``lofw pretrained export SOURCE --format
            torch``) or the name of a shipped optimizer.
        scale: the default ``scale`` of the groups.

    Raises:
        ConfigError: no such file or name, or a damaged file.
        PluginError: a component of the file has no PyTorch implementation.
    """

    def __init__(self, params: Iterable[Any], optimizer: str | Path, *, scale: float = 1.0):
        self.source = resolve_file(optimizer)
        manifest, arrays = read_portable(self.source)
        self.card: dict[str, Any] = manifest["card"]
        self.fingerprint: str = manifest["fingerprint"]
        self.recipe_fingerprint = recipe_fingerprint(manifest["optimizer"])
        self.rule = UpdateRule(manifest["optimizer"], arrays)
        super().__init__(params, {"scale": float(scale)})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient.

        ``closure``, if given, recomputes the loss (with gradients enabled);
        it is returned, and handed to the features component as ``loss``
        (lofw's built-in features do not read it).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        seen = loss.detach() if isinstance(loss, torch.Tensor) else loss
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("lofw.torch.LearnedOptimizer does not support sparse gradients "
                                       "(its features need the whole gradient tensor); use a dense embedding")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state.update(self.rule.init(p))
                accumulators = {k: v for k, v in state.items() if k != "step"}
                update, accumulators = self.rule.update(p.grad, p, accumulators, state["step"], seen)
                state.update(accumulators)
                state["step"] += 1
                if group["scale"] == 1.0:
                    p.add_(update)
                else:
                    p.add_(update, alpha=group["scale"])
        return loss

    def _layout(self) -> list[list[int]]:
        return [list(p.shape) for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim``'s state dict, plus the optimizer's identity and the parameter layout."""
        out = super().state_dict()
        out[STATE_KEY] = {"recipe": self.recipe_fingerprint, "fingerprint": self.fingerprint, "layout": self._layout()}
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`; the accumulators stay float32 (bit-identical resume).

        Raises:
            ConfigError: the state dict is not a lofw learned optimizer's, was
                written by another recipe, or for another parameter layout.
        """
        mine = state_dict.get(STATE_KEY) if isinstance(state_dict, dict) else None
        if not isinstance(mine, dict):
            raise ConfigError("load_state_dict: not the state_dict of a lofw.torch.LearnedOptimizer "
                              f"(it has no {STATE_KEY!r} entry)")
        if mine.get("recipe") != self.recipe_fingerprint:
            raise ConfigError("load_state_dict: this state_dict was written by an optimizer of another recipe "
                              f"(recipe fingerprint {str(mine.get('recipe'))[:12]}, this one {self.recipe_fingerprint[:12]})")
        if mine.get("layout") != self._layout():
            raise ConfigError(f"load_state_dict: this state_dict is for parameters of shapes {mine.get('layout')}, "
                              f"not {self._layout()} (another model, or the parameters in another order)")
        saved = state_dict["state"]
        super().load_state_dict({k: v for k, v in state_dict.items() if k != STATE_KEY})
        # torch.optim casts floating state to each parameter's dtype on loading; put the float32 values back.
        ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        for i, p in zip(ids, params):
            if i in saved:
                self.state[p] = {k: v.to(device=p.device, dtype=torch.float32, copy=True) if isinstance(v, torch.Tensor)
                                 else v for k, v in saved[i].items()}
