"""``es``: antithetic truncated Evolution Strategies (star_spec 3.5).

Per meta-step and particle ``i``: both branches start from the particle's
one shared state; the positive one unrolls ``T`` steps with ``theta + eps_i``,
the negative one with ``theta - eps_i`` (same batches and keys), and

    g_i = (mean_t L+_t - mean_t L-_t) eps_i / (2 sigma^2),

the estimate being ``mean_i g_i``. Only the positive branch's state is kept
for the next truncation (as the reference). Unlike PES the earlier
truncations' influence on the start state is ignored: ``g_i`` is unbiased
for the gradient of the smoothed loss of this truncation *given* its start
state, and biased for the whole-episode meta-loss (lower variance).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

import lofw
from lofw import EstimatorOutput
from lofw_plugins.estimator.antithetic import SIGNS, AbstractAntithetic
from lofw_plugins.estimator.truncated import InnerState, initial_inner_states


class ESState(eqx.Module):
    """``inner``: each particle's shared inner run (particle axis first)."""

    inner: InnerState


class ES(AbstractAntithetic):
    """Antithetic truncated ES from a shared start state (arguments:
    :class:`AbstractAntithetic`)."""

    def init(self, opt: lofw.AbstractOptimizer, task: lofw.AbstractTask, key: PRNGKeyArray) -> ESState:
        return ESState(initial_inner_states(opt, task, key, self.particles, self.horizon, self.stagger, self.truncation,
                                   self.schedule))

    def particle_gradients(
        self, opt: lofw.AbstractOptimizer, task: lofw.AbstractTask, state: ESState, key: PRNGKeyArray
    ) -> EstimatorOutput:
        eps, fresh, keys = self.draw(opt, task, key)
        branch = self.branch(opt, task)

        def particle(eps_i, inner, keys_i, fresh_i):
            inner_pm, losses, dones = jax.vmap(branch, in_axes=(0, None, None, None, None))(
                SIGNS, eps_i, inner, keys_i, fresh_i
            )
            delta = jnp.mean(losses[0]) - jnp.mean(losses[1])
            grad = jax.tree_util.tree_map(lambda e: delta * e / (2 * self.std**2), eps_i)
            positive = jax.tree_util.tree_map(lambda x: x[0], inner_pm)
            return grad, positive, jnp.mean(losses), jnp.any(dones[0])

        grad, inner, meta_loss, ended = jax.vmap(particle)(eps, state.inner, keys, fresh)
        return EstimatorOutput(grad, ESState(inner), meta_loss, ended.astype(jnp.float32))
