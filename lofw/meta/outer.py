"""The outer (meta) optimizer: zero non-finite meta-gradients, clip, AdamW.

``theta <- AdamW(clip(zero_nonfinite(g)))`` with learning rate ``lr`` and
decoupled weight decay ``lr * weight_decay * theta`` per step (paper
Appendix B: lr 1e-4, weight decay "specified as a multiplier on the outer
learning rate", clipping at 1.0).

Clipping by value (element-wise, the default) rather than by global norm:
the reference's only clipping tool (``GradientClipOptimizer``) clips by
value, and for a PES/ES estimate value clipping is the more robust choice.
The estimate's tails are heavy and coordinate-wise (``Delta * eps /
(2 sigma^2)``: one particle whose inner run blew up yields a huge ``Delta``
that lands on the coordinates its ``eps`` happened to stress), and AdamW
rescales each coordinate by its own second moment anyway. Value clipping
bounds what one outlier can put into each coordinate's moments, while
global-norm clipping would let one exploding coordinate shrink the step of
all 200 others. ``clip_mode: global_norm`` is available for comparison.

NaN/inf entries of the meta-gradient are set to 0 before clipping and counted
(star_spec 3.6: the reference zeroes NaN gradients), so one non-finite
estimate never poisons AdamW's moments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Int, PyTree

from lofw.meta.config import OuterConfig


def make_outer_optimizer(config: OuterConfig, lr: Array | float | None = None,
                         weight_decay: Array | float | None = None) -> optax.GradientTransformation:
    """``clip -> adamw`` for the meta-parameters (see the module docstring).

    ``lr`` and ``weight_decay`` replace the config's: a population
    (:mod:`lofw.meta.population`) passes each member's as a traced scalar.
    Neither is part of the optimizer's state, so a member's state is the
    state of the same run alone.
    """
    lr = config.lr if lr is None else lr
    weight_decay = config.weight_decay if weight_decay is None else weight_decay
    if config.clip_mode == "value":
        clip = optax.clip(config.clip)
    else:
        clip = optax.clip_by_global_norm(config.clip)
    return optax.chain(
        clip,
        optax.adamw(
            learning_rate=lr,
            b1=config.b1,
            b2=config.b2,
            eps=config.eps,
            weight_decay=weight_decay,
        ),
    )


def zero_nonfinite(tree: PyTree) -> tuple[PyTree, Int[Array, ""]]:
    """Replace NaN/inf entries by 0; also return how many there were."""
    leaves = jax.tree_util.tree_leaves(tree)
    count = sum((jnp.sum(~jnp.isfinite(x)) for x in leaves), jnp.zeros((), jnp.int32))
    cleaned = jax.tree_util.tree_map(lambda x: jnp.where(jnp.isfinite(x), x, jnp.zeros_like(x)), tree)
    return cleaned, count.astype(jnp.int32)
