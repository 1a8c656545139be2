"""Meta-training P with antithetic evolution strategies (Figures 2b and 2c).

With the whole episode (``T = 50``) in one unroll, PES has no truncations to
correct for and reduces to antithetic ES (Appendix B.1). For a perturbation
``eps ~ N(0, sigma^2 I)`` of P and a shared episode key (common random
numbers for the pair), the estimate of ``grad_P E[L]`` is

    g = mean over pairs of  (L(P + eps) - L(P - eps)) / (2 sigma^2) * eps,

an unbiased estimate of the gradient of the Gaussian-smoothed meta-loss. The
outer optimizer follows Appendix B and :mod:`lofw.meta.outer`: non-finite entries
zeroed, clipping at 1.0 (by value, as lofw's meta-training does by default),
then AdamW with learning rate 1e-4 and zero weight decay.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from lofw.nqm.rollout import NoisyQuadratic

#: ``loss_fn(P, key) -> scalar``: the meta-loss of one episode drawn with ``key``.
LossFn = Callable[[Float[Array, "n n"], PRNGKeyArray], Float[Array, ""]]


def antithetic_es_gradient(
    loss_fn: LossFn, P: Float[Array, "n n"], key: PRNGKeyArray, sigma: float, n_pairs: int
) -> tuple[Float[Array, "n n"], Float[Array, ""]]:
    """One antithetic ES estimate of ``grad_P E[loss_fn(P, key)]``.

    Args:
        loss_fn: the meta-loss of one episode, ``(P, key) -> scalar``.
        P: where to estimate the gradient.
        key: randomness of the perturbations and of the episodes.
        sigma: standard deviation of the perturbation of each entry of P.
        n_pairs: number of antithetic pairs ``(P + eps, P - eps)``; each pair
            shares one episode.

    Returns:
        ``(gradient estimate, mean meta-loss over the 2 * n_pairs episodes)``.
    """

    def pair(k):
        k_eps, k_episode = jax.random.split(k)
        eps = sigma * jax.random.normal(k_eps, P.shape, P.dtype)
        # One trace of loss_fn for both signs: the episode is sampled once.
        plus, minus = jax.vmap(loss_fn, in_axes=(0, None))(jnp.stack([P + eps, P - eps]), k_episode)
        return (plus - minus) / (2.0 * sigma**2) * eps, 0.5 * (plus + minus)

    grads, losses = jax.vmap(pair)(jax.random.split(key, n_pairs))
    return jnp.mean(grads, axis=0), jnp.mean(losses)


def meta_train_es(
    nqm: NoisyQuadratic,
    alpha: float | Array,
    key: PRNGKeyArray,
    *,
    T: int = 50,
    n_iterations: int = 2000,
    n_pairs: int = 8,
    sigma: float = 0.01,
    learning_rate: float = 1e-4,
    clip: float = 1.0,
    clip_mode: str = "value",
    P0: Float[Array, "n n"] | None = None,
) -> tuple[Float[Array, "k n n"], Float[Array, " k"]]:
    """Meta-train a dense P on ``nqm`` with antithetic ES; a pure, jit-able function.

    Args:
        nqm: the problem.
        alpha: the nominal step size (held fixed; only P is learned).
        key: randomness of the whole run.
        T: the episode length (the meta-loss is the mean loss over it).
        n_iterations: outer steps.
        n_pairs: antithetic pairs per estimate.
        sigma: perturbation standard deviation (Appendix B: 0.01).
        learning_rate: AdamW's learning rate (Appendix B: 1e-4; weight decay 0).
        clip: the clipping threshold (Appendix B: 1.0).
        clip_mode: ``"value"`` (element-wise) or ``"global_norm"``.
        P0: the initial P (default zero, so that ``A = I - alpha H``).

    Returns:
        ``(Ps, meta_losses)``: P before each outer step and after the last
        (``n_iterations + 1`` matrices), and the mean sampled meta-loss of each
        step's ES episodes (``n_iterations`` values).
    """
    P = jnp.zeros((nqm.dim, nqm.dim), jnp.float32) if P0 is None else jnp.asarray(P0, jnp.float32)
    if clip_mode not in ("value", "global_norm"):
        raise ValueError(f"unknown clip_mode {clip_mode!r}; valid choices: 'value', 'global_norm'")
    clipping = optax.clip(clip) if clip_mode == "value" else optax.clip_by_global_norm(clip)
    outer = optax.chain(clipping, optax.adamw(learning_rate, weight_decay=0.0))

    def loss_fn(P, k):
        return nqm.loss(P, alpha, k, T)

    def step(carry, k):
        P, opt_state = carry
        grad, meta_loss = antithetic_es_gradient(loss_fn, P, k, sigma, n_pairs)
        grad = jnp.where(jnp.isfinite(grad), grad, 0.0)  # an overflowing episode gives no signal
        updates, opt_state = outer.update(grad, opt_state, P)
        return (optax.apply_updates(P, updates), opt_state), (P, meta_loss)

    (P_last, _), (Ps, meta_losses) = jax.lax.scan(step, (P, outer.init(P)), jax.random.split(key, n_iterations))
    return jnp.concatenate([Ps, P_last[None]]), meta_losses
