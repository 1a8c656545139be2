"""lofw's learned optimizers in PyTorch, without JAX.

    import lofw.torch
    opt = lofw.torch.pretrained("star_stable", model.parameters())
    loss.backward(); opt.step(); opt.zero_grad()

A lofw optimizer meta-trained in JAX is written to a portable file by
``lofw pretrained export SOURCE --format torch --out FILE`` and used with
``lofw.torch.load(FILE, model.parameters())``. Neither imports JAX
(tests/test_torch_optimizer.py checks it in a fresh interpreter). Each
component of the update rule has a PyTorch implementation registered by a
plugin of entry-point group ``lofw.torch`` (:mod:`lofw.torch.components`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:
    import torch  # noqa: F401 - a clear message when PyTorch is missing
except ImportError as e:  # pragma: no cover - the test environment has torch
    raise ImportError("lofw.torch needs PyTorch: pip install 'lofw[torch]'") from e

from lofw.torch.components import get_plugin_manager, lookup, refresh, torch_components
from lofw.torch.files import shipped
from lofw.torch.optimizer import LearnedOptimizer
from lofw.torch.stats import LeafFeatures, LeafStats

__all__ = ["LeafFeatures", "LeafStats", "LearnedOptimizer", "get_plugin_manager", "load", "lookup", "pretrained",
           "refresh", "shipped", "torch_components"]


def pretrained(name: str, params: Iterable[Any], **kwargs: Any) -> LearnedOptimizer:
    """The shipped optimizer ``name`` (``lofw.torch.shipped()`` lists them) over ``params``."""
    return LearnedOptimizer(params, name, **kwargs)


def load(path: str | Path, params: Iterable[Any], **kwargs: Any) -> LearnedOptimizer:
    """The optimizer of the portable file ``path`` over ``params``."""
    return LearnedOptimizer(params, Path(path), **kwargs)
