"""lofw: build, meta-train and ablate learned optimizers in JAX.

Public names are re-exported here; everything else is private.
"""

from lofw.base_optimizer import AbstractOptimizer
from lofw.build import build
from lofw.dataset import AbstractDataset
from lofw.errors import ConfigError, LofwError, PluginError
from lofw.estimator import AbstractEstimator
from lofw.evaluate import EvaluationResult, evaluate
from lofw.features import AbstractFeatures, LeafFeatures
from lofw.grid import GridConfig, expand_grid, load_grid, run_grid, write_report
from lofw.hooks import hookimpl, hookspec
from lofw.magnitude import AbstractMagnitude
from lofw.meta_config import EstimatorConfig, MetaTrainConfig, OuterConfig
from lofw.meta_train import MetaTrainResult, meta_train
from lofw.network import AbstractNetwork
from lofw.nominal import AbstractNominalTerm
from lofw.optimizer import LearnedOptimizer, LearnedOptimizerState, count_meta_parameters, meta_parameters
from lofw.plugin_manager import component_infos, components, get_plugin_manager, refresh
from lofw.preconditioner import AbstractPreconditioner
from lofw.pretrained import pretrained
from lofw.recipes import RecipeConfig
from lofw.registry import load_registry
from lofw.sources import Source, resolve_source
from lofw.stats import LeafStats
from lofw.task import AbstractTask
from lofw.tasks import build_dataset, build_task
from lofw.version import __version__

__all__ = [
    "__version__",
    "AbstractDataset",
    "AbstractEstimator",
    "AbstractFeatures",
    "AbstractMagnitude",
    "AbstractNetwork",
    "AbstractNominalTerm",
    "AbstractOptimizer",
    "AbstractPreconditioner",
    "AbstractTask",
    "ConfigError",
    "EstimatorConfig",
    "EvaluationResult",
    "GridConfig",
    "LeafFeatures",
    "LeafStats",
    "LearnedOptimizer",
    "LearnedOptimizerState",
    "LofwError",
    "MetaTrainConfig",
    "MetaTrainResult",
    "OuterConfig",
    "PluginError",
    "RecipeConfig",
    "Source",
    "build",
    "build_dataset",
    "build_task",
    "component_infos",
    "components",
    "count_meta_parameters",
    "evaluate",
    "expand_grid",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "load_grid",
    "load_registry",
    "meta_parameters",
    "meta_train",
    "pretrained",
    "refresh",
    "resolve_source",
    "run_grid",
    "write_report",
]
