"""Built-in meta-gradient estimators: ``pes``, ``es``, ``tbptt``."""

from lofw_plugins.estimator.es import ES
from lofw_plugins.estimator.pes import PES
from lofw_plugins.estimator.tbptt import TBPTT

__all__ = ["ES", "PES", "TBPTT"]
