"""lofw: build, meta-train and ablate learned optimizers in JAX.

The face: every public name, including everything a plugin of any kind needs
(``lofw.AbstractFeatures``, ``lofw.Batch``, ``lofw.EstimatorOutput``, ...).
Import from here; the module a name lives in may move (docs/architecture.md).
"""

from lofw.builder import build, build_optimizer
from lofw.errors import ConfigError, LofwError, PluginError, RunFailed, choices
from lofw.evaluation.evaluate import EvaluationResult, evaluate
from lofw.evaluation.sources import Source, resolve_source
from lofw.grid import GridConfig, expand_grid, load_grid, run_grid, write_report
from lofw.hooks import hookimpl, hookspec
from lofw.interfaces.dataset import SPLITS, AbstractDataset, Batch
from lofw.interfaces.estimator import AbstractEstimator, EstimatorOutput
from lofw.interfaces.features import AbstractFeatures, LeafFeatures
from lofw.interfaces.magnitude import AbstractMagnitude
from lofw.interfaces.network import AbstractNetwork
from lofw.interfaces.nominal import AbstractNominalTerm
from lofw.interfaces.optimizer import AbstractOptimizer, Params, as_optax
from lofw.interfaces.preconditioner import AbstractPreconditioner
from lofw.interfaces.stats import LeafStats
from lofw.interfaces.task import AbstractTask
from lofw.learned_optimizer import LearnedOptimizer, LearnedOptimizerState, count_meta_parameters, meta_parameters
from lofw.meta.config import EstimatorConfig, MetaTrainConfig, OuterConfig
from lofw.meta.training import MetaTrainResult, meta_train
from lofw.plugin_manager import component_infos, components, get_plugin_manager, refresh
from lofw.pretrained_loader import pretrained
from lofw.recipes import RecipeConfig
from lofw.registry import load_registry
from lofw.tasks import build_dataset, build_task
from lofw.version import __version__

__all__ = [
    "__version__",
    # the contracts of the component kinds (lofw/interfaces/), and what they pass around
    "AbstractDataset",
    "AbstractEstimator",
    "AbstractFeatures",
    "AbstractMagnitude",
    "AbstractNetwork",
    "AbstractNominalTerm",
    "AbstractOptimizer",
    "AbstractPreconditioner",
    "AbstractTask",
    "Batch",
    "EstimatorOutput",
    "LeafFeatures",
    "LeafStats",
    "Params",
    "SPLITS",
    "as_optax",
    # errors
    "ConfigError",
    "LofwError",
    "PluginError",
    "RunFailed",
    "choices",
    # plugins
    "component_infos",
    "components",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "refresh",
    # building
    "LearnedOptimizer",
    "LearnedOptimizerState",
    "RecipeConfig",
    "build",
    "build_dataset",
    "build_optimizer",
    "build_task",
    "count_meta_parameters",
    "load_registry",
    "meta_parameters",
    "pretrained",
    # meta-training
    "EstimatorConfig",
    "MetaTrainConfig",
    "MetaTrainResult",
    "OuterConfig",
    "meta_train",
    # evaluation
    "EvaluationResult",
    "Source",
    "evaluate",
    "resolve_source",
    # grids
    "GridConfig",
    "expand_grid",
    "load_grid",
    "run_grid",
    "write_report",
]
