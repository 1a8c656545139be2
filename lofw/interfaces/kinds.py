"""The component kinds and the interface each one subclasses."""

from __future__ import annotations

from lofw.interfaces.dataset import AbstractDataset
from lofw.interfaces.estimator import AbstractEstimator
from lofw.interfaces.features import AbstractFeatures
from lofw.interfaces.magnitude import AbstractMagnitude
from lofw.interfaces.network import AbstractNetwork
from lofw.interfaces.nominal import AbstractNominalTerm
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.interfaces.preconditioner import AbstractPreconditioner
from lofw.interfaces.schedule import AbstractHorizonSchedule
from lofw.interfaces.task import AbstractTask

#: kind name -> the abstract interface a component of that kind subclasses.
INTERFACES: dict[str, type] = {
    "features": AbstractFeatures,
    "nominal": AbstractNominalTerm,
    "network": AbstractNetwork,
    "preconditioner": AbstractPreconditioner,
    "magnitude": AbstractMagnitude,
    "estimator": AbstractEstimator,
    "schedule": AbstractHorizonSchedule,
    "task": AbstractTask,
    "dataset": AbstractDataset,
    "optimizer": AbstractOptimizer,
}


def kind_of(cls: type) -> str | None:
    """The kind whose interface ``cls`` subclasses, or None."""
    if not isinstance(cls, type):
        return None
    for kind, interface in INTERFACES.items():
        if issubclass(cls, interface):
            return kind
    return None
