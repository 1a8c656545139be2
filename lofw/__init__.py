"""lofw: build, meta-train and ablate learned optimizers in JAX.

The face: every public name, including everything a plugin of any kind needs
(``lofw.AbstractFeatures``, ``lofw.Batch``, ``lofw.EstimatorOutput``, ...).
Import from here; the module a name lives in may move (docs/architecture.md).

The names are loaded on first use (PEP 562): ``import lofw`` imports neither
JAX nor any other module of lofw, so that :mod:`lofw.torch` (a learned
optimizer in PyTorch) runs without JAX installed. ``lofw.meta_train`` (or
``from lofw import meta_train``) imports its module the first time.
"""

from __future__ import annotations

import importlib
from typing import Any

from lofw.version import __version__

#: Every face name and the module it lives in.
_FACE: dict[str, str] = {
    # the contracts of the component kinds (lofw/interfaces/), and what they pass around
    "AbstractDataset": "lofw.interfaces.dataset",
    "AbstractEstimator": "lofw.interfaces.estimator",
    "AbstractFeatures": "lofw.interfaces.features",
    "AbstractHorizonSchedule": "lofw.interfaces.schedule",
    "AbstractMagnitude": "lofw.interfaces.magnitude",
    "AbstractNetwork": "lofw.interfaces.network",
    "AbstractNominalTerm": "lofw.interfaces.nominal",
    "AbstractOptimizer": "lofw.interfaces.optimizer",
    "AbstractPreconditioner": "lofw.interfaces.preconditioner",
    "AbstractTask": "lofw.interfaces.task",
    "Batch": "lofw.interfaces.dataset",
    "EstimatorOutput": "lofw.interfaces.estimator",
    "LeafFeatures": "lofw.interfaces.features",
    "LeafStats": "lofw.interfaces.stats",
    "Params": "lofw.interfaces.optimizer",
    "SPLITS": "lofw.interfaces.dataset",
    "as_optax": "lofw.interfaces.optimizer",
    "draw_config": "lofw.interfaces.task",
    # errors
    "ConfigError": "lofw.errors",
    "LofwError": "lofw.errors",
    "PluginError": "lofw.errors",
    "RunFailed": "lofw.errors",
    "choices": "lofw.errors",
    # plugins
    "component_infos": "lofw.plugin_manager",
    "components": "lofw.plugin_manager",
    "get_plugin_manager": "lofw.plugin_manager",
    "hookimpl": "lofw.hooks",
    "hookspec": "lofw.hooks",
    "refresh": "lofw.plugin_manager",
    # building
    "LearnedOptimizer": "lofw.learned_optimizer",
    "LearnedOptimizerState": "lofw.learned_optimizer",
    "RecipeConfig": "lofw.recipes",
    "build": "lofw.builder",
    "build_dataset": "lofw.tasks",
    "build_optimizer": "lofw.builder",
    "build_task": "lofw.tasks",
    "count_meta_parameters": "lofw.learned_optimizer",
    "load_registry": "lofw.registry",
    "meta_parameters": "lofw.learned_optimizer",
    "pretrained": "lofw.pretrained_loader",
    "stop_at_leaf_states": "lofw.learned_optimizer",
    # meta-training
    "EstimatorConfig": "lofw.meta.config",
    "MetaTrainConfig": "lofw.meta.config",
    "MetaTrainResult": "lofw.meta.training",
    "OuterConfig": "lofw.meta.config",
    "meta_train": "lofw.meta.training",
    # evaluation
    "EvaluationResult": "lofw.evaluation.evaluate",
    "Source": "lofw.evaluation.sources",
    "evaluate": "lofw.evaluation.evaluate",
    "resolve_source": "lofw.evaluation.sources",
    # grids
    "GridConfig": "lofw.grid",
    "expand_grid": "lofw.grid",
    "load_grid": "lofw.grid",
    "run_grid": "lofw.grid",
    "write_report": "lofw.grid",
}

__all__ = ["__version__"] + list(_FACE)


def __getattr__(name: str) -> Any:
    module = _FACE.get(name)
    if module is None:
        raise AttributeError(f"module 'lofw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
