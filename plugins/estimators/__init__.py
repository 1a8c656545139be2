"""Built-in meta-gradient estimators: ``pes``, ``es``, ``tbptt``."""

from lofw_plugins.estimators.es import ES
from lofw_plugins.estimators.pes import PES
from lofw_plugins.estimators.tbptt import TBPTT

__all__ = ["ES", "PES", "TBPTT"]
