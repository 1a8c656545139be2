"""``pes``: Persistent Evolution Strategies (Vicol et al. 2021; star_spec 3.4).

Per meta-step and particle ``i``, with ``theta`` the meta-parameters:

1. ``eps_i ~ N(0, sigma^2 I)``; the positive branch unrolls its own
   persistent state with ``theta + eps_i``, the negative branch its own with
   ``theta - eps_i``, for ``T = truncation`` steps on the same batches and
   keys (antithetic pair). The two states are carried forward separately.
2. ``Delta_t = L+_t - L-_t`` (normalised training losses).
   ``old_t = 1`` while no episode ended *before* step t (exclusive), else 0.
   ``Delta_old = sum_t Delta_t old_t / T``, ``Delta_new = sum_t Delta_t (1 - old_t) / T``.
3. ``A_i <- A_i + eps_i`` (the perturbations the current episode has seen).
4. ``g_i = (Delta_old A_i + Delta_new eps_i) / (2 sigma^2)``; the estimate is
   ``mean_i g_i``.
5. Next accumulator: ``A_i`` if no episode ended; ``eps_i`` if one ended
   before the last step (the new episode has run under ``eps_i``); ``0`` if
   it ended exactly at the last step (the new episode has not started).

Last-step-of-episode bookkeeping (deliberate fix of the reference): in
lofw's unroll (``truncated.py``) ``done_t`` marks the *last training step* of
an episode and the reset happens inside that step, so that step's loss was
produced by the old episode and is weighted by the accumulated history
``A_i`` (``old_t`` is exclusive). The reference marks the same step
``is_done`` and counts it inclusively, weighting it by ``eps_i`` only, a
1-in-T bias; it also spends an extra masked reset step per episode, which
lofw does not. Consequence: over whole episodes, ``mean_i g_i`` is an
unbiased estimate of the gradient of the Gaussian-smoothed mean training
loss (each truncation of an episode perturbed independently), which
``tests/test_estimators.py`` checks by quadrature.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray, PyTree

import lofw
from lofw import EstimatorOutput
from lofw_plugins.estimator.antithetic import SIGNS, AbstractAntithetic
from lofw_plugins.estimator.truncated import InnerState, initial_inner_states


class PESState(eqx.Module):
    """Every leaf has the particle axis first.

    Attributes:
        branches: the inner runs, axes ``[particle, branch]``: branch 0 is
            driven by ``theta + eps``, branch 1 by ``theta - eps`` (kept
            stacked so that a meta-step never copies them apart).
        accumulator: the sum of the perturbations of each particle's current
            episode (meta-parameter pytree).
    """

    branches: InnerState
    accumulator: PyTree

    @property
    def positive(self) -> InnerState:
        """The ``theta + eps`` runs."""
        return jax.tree_util.tree_map(lambda x: x[:, 0], self.branches)

    @property
    def negative(self) -> InnerState:
        """The ``theta - eps`` runs."""
        return jax.tree_util.tree_map(lambda x: x[:, 1], self.branches)


class PES(AbstractAntithetic):
    """Antithetic PES with persistent +/- states and staggered particles
    (arguments: :class:`AbstractAntithetic`)."""

    def init(self, opt: lofw.AbstractOptimizer, task: lofw.AbstractTask, key: PRNGKeyArray) -> PESState:
        states = initial_inner_states(opt, task, key, self.particles, self.horizon, self.stagger, self.truncation,
                                   self.schedule)
        theta = eqx.filter(opt, eqx.is_inexact_array)
        acc = jax.tree_util.tree_map(lambda t: jnp.zeros((self.particles,) + t.shape, t.dtype), theta)
        both = jax.tree_util.tree_map(lambda x: jnp.stack([x, x], axis=1), states)
        return PESState(branches=both, accumulator=acc)

    def particle_gradients(
        self, opt: lofw.AbstractOptimizer, task: lofw.AbstractTask, state: PESState, key: PRNGKeyArray
    ) -> EstimatorOutput:
        eps, fresh, keys = self.draw(opt, task, key)
        branch = self.branch(opt, task)

        def particle(eps_i, inner_pm, acc_i, keys_i, fresh_i):
            inner_pm, losses, dones = jax.vmap(branch, in_axes=(0, None, 0, None, None))(
                SIGNS, eps_i, inner_pm, keys_i, fresh_i
            )
            done = dones[0]  # both branches share the episode counters
            delta = losses[0] - losses[1]
            old = (jnp.cumsum(done) - done) == 0
            d_old = jnp.mean(jnp.where(old, delta, 0.0))
            d_new = jnp.mean(jnp.where(old, 0.0, delta))
            acc_i = jax.tree_util.tree_map(jnp.add, acc_i, eps_i)
            grad = jax.tree_util.tree_map(
                lambda a, e: (d_old * a + d_new * e) / (2 * self.std**2), acc_i, eps_i
            )
            started_new = ~old[-1]
            ended = jnp.any(done)
            next_acc = jax.tree_util.tree_map(
                lambda a, e: jnp.where(started_new, e, jnp.where(ended, jnp.zeros_like(a), a)), acc_i, eps_i
            )
            return grad, inner_pm, next_acc, jnp.mean(losses), ended

        grad, both, acc, meta_loss, ended = jax.vmap(particle)(eps, state.branches, state.accumulator, keys, fresh)
        return EstimatorOutput(
            gradient=grad,
            state=PESState(both, acc),
            meta_loss=meta_loss,
            resets=ended.astype(jnp.float32),
        )
