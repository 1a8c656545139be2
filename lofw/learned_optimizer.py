"""``LearnedOptimizer``: one component of each optimizer kind, composed.

The update of one parameter element (paper section 5.2, DESIGN.md)::

    nominal  = b1 * nominal_magnitude(h_nom) * nominal.direction(stats)
    blackbox = b3 * preconditioner.apply(h_dir, stats) * blackbox_magnitude(h_bb)
    phi_next = phi - (nominal + blackbox)

where ``h_*`` are the network's heads for that element. A term is present
when its slot is filled: the nominal term when ``nominal`` is set, the
blackbox term when ``blackbox_magnitude`` is set (use the ``constant``
magnitude for an unscaled blackbox). Absent magnitudes and preconditioners
are the constant 1 and the identity.

``b1`` is a meta-parameter, stored as a log-offset so that it stays positive
under PES perturbations (the nominal term is always a descent direction) and
so that weight decay on the meta-parameters pulls it back to its initial
value, like the decay offsets: ``b1 = nominal_scale_init * exp(nominal_log_scale)``.
``b3`` (``blackbox_scale``) is a constant.
"""

from __future__ import annotations

from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PyTree

from lofw.interfaces.features import AbstractFeatures
from lofw.interfaces.magnitude import AbstractMagnitude
from lofw.interfaces.network import AbstractNetwork
from lofw.interfaces.nominal import AbstractNominalTerm
from lofw.interfaces.optimizer import AbstractOptimizer, Params
from lofw.interfaces.preconditioner import AbstractPreconditioner
from lofw.slots import BLACKBOX_MAGNITUDE, DIRECTION, NOMINAL_MAGNITUDE, required_heads


class LearnedOptimizerState(eqx.Module):
    """State of :class:`LearnedOptimizer`.

    ``leaves`` has the parameters' own structure: where the parameters hold a
    tensor, it holds that tensor's accumulator state
    (``features.init_leaf(param)``; for the ``adafactor`` features an
    ``AdafactorLeafState`` of momenta ``(n_momenta, *param.shape)``, second
    moment ``param.shape`` and factored row/column statistics or a diagonal
    EMA). Flattened, it gives the per-tensor states one after another in the
    parameters' flattening order, the order of checkpoints written when
    ``leaves`` was a tuple, so those still load.

    ``optax.tree_utils.tree_map_params(tx, f, state)`` sees ``leaves`` as the
    parameters' copy and ``step`` as a non-parameter field: a one-argument
    ``f`` is applied to every array of every per-tensor state, ``step`` is
    left alone or passed to ``transform_non_params``. With extra
    parameter-shaped arguments (``*rest``, for example the parameters'
    shardings), pass ``is_leaf=stop_at_leaf_states(opt, params)`` so that
    ``f(leaf_state, *rest_leaves)`` receives each tensor's whole state and
    returns a tree of the same structure::

        def like_param(s, sharding):   # PartitionSpec(None, *spec) for the momenta, etc.
            ...
        shardings = optax.tree_utils.tree_map_params(
            tx, like_param, state, param_shardings,
            is_leaf=stop_at_leaf_states(opt, params), transform_non_params=lambda _: replicated)

    Attributes:
        leaves: the features' accumulator state of each parameter tensor, in
            the parameters' pytree structure.
        step: number of updates done so far.
    """

    leaves: PyTree
    step: Int[Array, ""]


class LearnedOptimizer(AbstractOptimizer):
    """A learned optimizer composed of interchangeable components.

    Its inexact-array leaves are the meta-parameters: take them with
    ``eqx.partition(opt, eqx.is_inexact_array)``.

    Attributes:
        features: accumulators and network inputs (required).
        nominal: the hand-designed direction, or None for no nominal term.
        network: maps features to heads; None when no head is read.
        preconditioner: applied to the blackbox direction; None = identity.
        nominal_magnitude: scales the nominal term; None = 1.
        blackbox_magnitude: scales the blackbox term; None = no blackbox term.
        nominal_log_scale: the meta-learned log-offset of ``b1`` (None without
            a nominal term).
        nominal_scale_init: ``b1`` at ``nominal_log_scale = 0``.
        blackbox_scale: the constant ``b3``.
    """

    features: AbstractFeatures
    nominal: AbstractNominalTerm | None
    network: AbstractNetwork | None
    preconditioner: AbstractPreconditioner | None
    nominal_magnitude: AbstractMagnitude | None
    blackbox_magnitude: AbstractMagnitude | None
    nominal_log_scale: Float[Array, ""] | None
    nominal_scale_init: float = eqx.field(static=True, default=1e-3)
    blackbox_scale: float = eqx.field(static=True, default=1e-3)

    def __init__(
        self,
        features: AbstractFeatures,
        nominal: AbstractNominalTerm | None = None,
        network: AbstractNetwork | None = None,
        preconditioner: AbstractPreconditioner | None = None,
        nominal_magnitude: AbstractMagnitude | None = None,
        blackbox_magnitude: AbstractMagnitude | None = None,
        *,
        nominal_scale_init: float = 1e-3,
        blackbox_scale: float = 1e-3,
        nominal_log_scale: Float[Array, ""] | None = None,
    ):
        self.features = features
        self.nominal = nominal
        self.network = network
        self.preconditioner = preconditioner
        self.nominal_magnitude = nominal_magnitude
        self.blackbox_magnitude = blackbox_magnitude
        self.nominal_scale_init = float(nominal_scale_init)
        self.blackbox_scale = float(blackbox_scale)
        if nominal is None:
            self.nominal_log_scale = None
        elif nominal_log_scale is None:
            self.nominal_log_scale = jnp.zeros((), jnp.float32)
        else:
            self.nominal_log_scale = nominal_log_scale

    def __check_init__(self):
        if self.nominal is None and self.blackbox_magnitude is None:
            raise ValueError(
                "a LearnedOptimizer needs a nominal term or a blackbox term "
                "(set `nominal`, or `blackbox_magnitude` - use the `constant` "
                "magnitude for an unscaled blackbox direction)"
            )
        heads = self.heads
        if heads and self.network is None:
            raise ValueError(f"the components read the network heads {heads}, but `network` is None")
        if self.network is not None:
            missing = [h for h in heads if h not in self.network.heads]
            if missing:
                raise ValueError(
                    f"the network has heads {self.network.heads} but the components also "
                    f"read {tuple(missing)}; build it with heads={heads}"
                )

    @property
    def heads(self) -> tuple[str, ...]:
        """The network heads this composition reads."""
        return required_heads(self.nominal, self.nominal_magnitude, self.blackbox_magnitude)

    @property
    def nominal_scale(self) -> Float[Array, ""]:
        """``b1``, the scale of the nominal term."""
        if self.nominal_log_scale is None:
            return jnp.zeros(())
        return self.nominal_scale_init * jnp.exp(self.nominal_log_scale)

    def init(self, params: Params) -> LearnedOptimizerState:
        """Zero accumulators for ``params``, in their structure."""
        return LearnedOptimizerState(
            leaves=jax.tree_util.tree_map(self.features.init_leaf, params),
            step=jnp.zeros((), jnp.int32),
        )

    def update(
        self, grads: Params, state: LearnedOptimizerState, params: Params
    ) -> tuple[Params, LearnedOptimizerState]:
        """One step: ``(updates, new_state)``; add ``updates`` to ``params``."""
        grad_leaves, treedef = jax.tree_util.tree_flatten(grads)
        param_leaves = treedef.flatten_up_to(params)
        updates, new_leaves = [], []
        for g, p, s in zip(grad_leaves, param_leaves, treedef.flatten_up_to(state.leaves)):
            new_s, u = self._update_leaf(g, p, s, state.step)
            updates.append(u)
            new_leaves.append(new_s)
        new_state = LearnedOptimizerState(
            leaves=jax.tree_util.tree_unflatten(treedef, new_leaves), step=state.step + 1
        )
        return jax.tree_util.tree_unflatten(treedef, updates), new_state

    def _update_leaf(self, grad, param, leaf_state, step):
        dtype = param.dtype
        grad = grad.astype(jnp.float32)
        param32 = param.astype(jnp.float32)
        new_state, stats, feats = self.features.update_leaf(grad, param32, leaf_state, step)
        heads = self.network(feats) if self.network is not None else {}
        step_size = jnp.zeros_like(param32)
        if self.nominal is not None:
            scale = self.nominal_scale
            if self.nominal_magnitude is not None:
                scale = scale * self.nominal_magnitude(heads.get(NOMINAL_MAGNITUDE))
            step_size = step_size + scale * self.nominal.direction(stats)
        if self.blackbox_magnitude is not None:
            direction = heads[DIRECTION]
            if self.preconditioner is not None:
                direction = self.preconditioner.apply(direction, stats)
            magnitude = self.blackbox_magnitude(heads.get(BLACKBOX_MAGNITUDE))
            step_size = step_size + self.blackbox_scale * direction * magnitude
        return new_state, (-step_size).astype(dtype)


def stop_at_leaf_states(opt: LearnedOptimizer, params: Params) -> Callable[[Any], bool]:
    """An ``is_leaf`` that stops a tree map at the per-tensor states of ``opt.init(params)``.

    For ``optax.tree_utils.tree_map_params(tx, f, state, *rest, is_leaf=...)``
    with parameter-shaped ``rest``: ``f`` then receives one tensor's whole
    accumulator state with that tensor's entries of ``rest``. A node stops the
    map when its type and pytree structure are those of some per-tensor state
    (computed from shapes only, with ``jax.eval_shape``).

    Args:
        opt: the learned optimizer whose state is mapped over.
        params: the parameters (arrays or ``jax.ShapeDtypeStruct``) it was
            initialised for.
    """
    treedef = jax.tree_util.tree_structure(params)
    per_tensor = treedef.flatten_up_to(jax.eval_shape(opt.init, params).leaves)
    types = {type(s) for s in per_tensor}
    structures = {jax.tree_util.tree_structure(s) for s in per_tensor}

    def is_leaf(x: Any) -> bool:
        return type(x) in types and jax.tree_util.tree_structure(x) in structures

    return is_leaf


def meta_parameters(opt: eqx.Module) -> PyTree:
    """The meta-parameters of ``opt``: its inexact-array leaves (others None)."""
    return eqx.filter(opt, eqx.is_inexact_array)


def count_meta_parameters(opt: eqx.Module) -> int:
    """Number of scalar meta-parameters of ``opt``."""
    return sum(x.size for x in jax.tree_util.tree_leaves(meta_parameters(opt)))
