"""The ``estimator`` component kind: meta-gradients over truncated unrolls.

An estimator owns the particles' inner runs (their parameters, optimizer
states and episode counters, plus whatever it needs such as PES's
perturbation accumulators) in an explicit state whose every leaf has the
particle axis first. One call of :meth:`AbstractEstimator.estimate` advances
every particle by ``truncation`` inner steps and returns the meta-gradient
estimate: the mean over that axis of :meth:`particle_gradients`, so a later
change can shard the particle axis over a ``jax.sharding.Mesh`` and the mean
becomes a cross-device reduction, without touching the estimators.

The meta-loss is the mean over inner steps of ``task.normalizer(loss)`` of
the training loss at the pre-update parameters (paper eq. 3 with
``w_t = 1 / T``; star_spec 3.2); episodes last ``horizon`` steps and then
restart from fresh task parameters and a fresh optimizer state.
"""


import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.interfaces.task import AbstractTask

#: The meta-parameters of an optimizer: ``eqx.filter(opt, eqx.is_inexact_array)``.
MetaParams = PyTree


class EstimatorOutput(eqx.Module):
    """What one estimate returns (all values, nothing logged).

    Attributes:
        gradient: per-particle meta-gradients, the meta-parameters' pytree
            with a leading particle axis on every array leaf (None elsewhere).
        state: the next estimator state.
        meta_loss: shape ``(particles,)``: each particle's mean normalised
            training loss over the truncation (PES/ES: the mean of the + and
            - branches).
        resets: shape ``(particles,)``: 1 where the particle's episode ended
            during this truncation.
    """

    gradient: MetaParams
    state: Any
    meta_loss: Float[Array, " particles"]
    resets: Float[Array, " particles"]


class AbstractEstimator(eqx.Module):
    """Estimates the gradient of the meta-loss with respect to meta-parameters.

    Contract (all methods pure, jit-able; the configuration fields are
    static Python numbers):

    - ``init(opt, task, key)`` -> state whose leaves all have the particle
      axis first (length ``particles``).
    - ``particle_gradients(opt, task, state, key)`` ->
      :class:`EstimatorOutput` with per-particle gradients.
    - ``estimate(opt, task, state, key)`` -> ``(gradient, output)``: the mean
      over particles (concrete; do not override).

    ``opt`` is any :class:`lofw.AbstractOptimizer`; its inexact-array leaves
    are the meta-parameters that are perturbed or differentiated.
    """

    truncation: AbstractVar[int]
    particles: AbstractVar[int]
    horizon: AbstractVar[int]

    @property
    def unrolls_per_particle(self) -> int:
        """Inner unrolls each particle runs per meta-step (2 for an antithetic pair)."""
        return 1

    @abc.abstractmethod
    def init(self, opt: AbstractOptimizer, task: AbstractTask, key: PRNGKeyArray) -> Any:
        """Initial state of every particle (leading particle axis)."""

    @abc.abstractmethod
    def particle_gradients(
        self, opt: AbstractOptimizer, task: AbstractTask, state: Any, key: PRNGKeyArray
    ) -> EstimatorOutput:
        """Advance every particle by one truncation; per-particle gradients."""

    def estimate(
        self, opt: AbstractOptimizer, task: AbstractTask, state: Any, key: PRNGKeyArray
    ) -> tuple[MetaParams, EstimatorOutput]:
        """The meta-gradient (mean over particles) and the full output."""
        out = self.particle_gradients(opt, task, state, key)
        grad = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), out.gradient)
        return grad, out
