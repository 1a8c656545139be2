"""A contract suite any component, built-in or third-party, can be run through.

Each ``check_*`` function raises ``AssertionError`` with an explanation when
the component breaks the contract of its kind, and returns None otherwise::

    from lofw.testing import check_component
    check_component(MyNominalTerm())

Checked for every kind: the component's functions jit; a second call with
new values of the same shapes does not recompile; they vmap (and agree
with the unbatched call); outputs are finite and have the right shapes;
state structure, shapes and dtypes are stable across steps.
"""

from __future__ import annotations

from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lofw.interfaces.dataset import AbstractDataset
from lofw.interfaces.features import AbstractFeatures, LeafFeatures
from lofw.interfaces.magnitude import AbstractMagnitude
from lofw.interfaces.network import AbstractNetwork
from lofw.interfaces.nominal import AbstractNominalTerm
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.interfaces.preconditioner import AbstractPreconditioner
from lofw.interfaces.stats import LeafStats
from lofw.interfaces.task import AbstractTask

#: Parameter shapes the suite exercises: scalar, vector, matrix, conv kernel.
SHAPES = ((), (7,), (5, 3), (3, 3, 2, 4))


def example_params(key: jax.Array | None = None) -> dict[str, jax.Array]:
    """A pytree with a scalar, a vector, a matrix and a conv kernel (HWIO)."""
    key = jax.random.PRNGKey(0) if key is None else key
    keys = jax.random.split(key, len(SHAPES))
    names = ("scale", "bias", "dense", "conv")
    return {n: jax.random.normal(k, s) for n, k, s in zip(names, keys, SHAPES)}


def _structure(tree) -> Any:
    return jax.tree_util.tree_structure(tree), [(x.shape, x.dtype) for x in jax.tree_util.tree_leaves(tree)]


def _assert_finite(tree, what: str) -> None:
    for leaf in jax.tree_util.tree_leaves(tree):
        if eqx.is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.inexact):
            assert bool(jnp.all(jnp.isfinite(leaf))), f"{what} is not finite: {leaf}"


def _assert_close(a, b, what: str) -> None:
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6, err_msg=what)


def _jit_twice(fn: Callable, args1: tuple, args2: tuple, what: str):
    """Call ``fn`` jitted on two argument sets of one shape; assert one trace."""
    traces = []

    def traced(*args):
        traces.append(None)
        return fn(*args)

    jitted = eqx.filter_jit(traced)
    out1 = jitted(*args1)
    out2 = jitted(*args2)
    assert len(traces) == 1, f"{what} recompiled on its second call ({len(traces)} traces)"
    return out1, out2


def _check_vmap(fn: Callable, batched_args: tuple, what: str) -> None:
    """vmap over the leading axis agrees with a Python loop."""
    out = eqx.filter_vmap(fn)(*batched_args)
    n = jax.tree_util.tree_leaves(batched_args)[0].shape[0]
    for i in range(n):
        args_i = jax.tree_util.tree_map(lambda x: x[i], batched_args)
        ref = fn(*args_i)
        _assert_close(jax.tree_util.tree_map(lambda x: x[i], out), ref, f"{what}: vmap disagrees with a loop")


def example_stats(shape: tuple[int, ...], key: jax.Array, n_momenta: int = 3) -> LeafStats:
    """Plausible statistics for one tensor (positive second moment)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return LeafStats(
        grad=jax.random.normal(k1, shape),
        param=jax.random.normal(k2, shape),
        momentum=0.1 * jax.random.normal(k3, shape + (n_momenta,)),
        second_moment=0.01 * jnp.abs(jax.random.normal(k4, shape)),
        step=jnp.asarray(3, jnp.int32),
        second_moment_decay=jnp.asarray(0.999, jnp.float32),
    )


def _batched(make: Callable[[jax.Array], Any], n: int = 3) -> Any:
    items = [make(k) for k in jax.random.split(jax.random.PRNGKey(1), n)]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *items)


def _check_elementwise(fn: Callable[[LeafStats], jax.Array], what: str) -> None:
    for shape in SHAPES:
        s1, s2 = example_stats(shape, jax.random.PRNGKey(1)), example_stats(shape, jax.random.PRNGKey(2))
        out1, _ = _jit_twice(fn, (s1,), (s2,), what)
        assert jnp.broadcast_shapes(out1.shape, shape) == shape, (
            f"{what}: output shape {out1.shape} does not broadcast to the parameter shape {shape}"
        )
        _assert_finite(out1, f"{what} output for shape {shape}")
        _check_vmap(fn, (_batched(lambda k: example_stats(shape, k)),), what)


def check_nominal(term: AbstractNominalTerm) -> None:
    """Contract of a nominal term."""
    _check_elementwise(term.direction, f"{type(term).__name__}.direction")


def check_preconditioner(pre: AbstractPreconditioner) -> None:
    """Contract of a preconditioner."""
    _check_elementwise(lambda s: pre.apply(s.grad, s), f"{type(pre).__name__}.apply")


def check_magnitude(mag: AbstractMagnitude) -> None:
    """Contract of a magnitude: positive, finite, broadcastable."""
    what = f"{type(mag).__name__}.__call__"
    for shape in SHAPES:
        h1 = 10.0 * jax.random.normal(jax.random.PRNGKey(1), shape)
        h2 = 10.0 * jax.random.normal(jax.random.PRNGKey(2), shape)
        fn = (lambda h: mag(h)) if mag.uses_head else (lambda h: mag(None) + 0.0 * h)
        out, _ = _jit_twice(fn, (h1,), (h2,), what)
        assert bool(jnp.all(out > 0)), f"{what} must be positive, got {out}"
        _assert_finite(out, what)
        _check_vmap(fn, (_batched(lambda k: jax.random.normal(k, shape)),), what)


def check_features(features: AbstractFeatures) -> None:
    """Contract of a features component over scalars, vectors, matrices, conv kernels."""
    name = type(features).__name__
    for shape in SHAPES:
        param = jax.random.normal(jax.random.PRNGKey(0), shape)
        state = features.init_leaf(param)
        structure = _structure(state)

        def step(state, grad, t):
            return features.update_leaf(grad, param, state, t)

        grads = [jax.random.normal(jax.random.PRNGKey(10 + i), shape) for i in range(3)]
        (s1, stats, feats), _ = _jit_twice(
            step, (state, grads[0], jnp.asarray(0, jnp.int32)), (state, grads[1], jnp.asarray(1, jnp.int32)), f"{name}.update_leaf"
        )
        s2, _, _ = step(s1, grads[2], jnp.asarray(1, jnp.int32))
        for s in (s1, s2):
            assert _structure(s) == structure, f"{name}: state structure/shapes/dtypes change across steps for shape {shape}"
        assert isinstance(feats, LeafFeatures), f"{name}.update_leaf must return LeafFeatures, got {type(feats)}"
        assert feats.n_inputs == features.n_inputs, (
            f"{name}: produced {feats.n_inputs} inputs but n_inputs says {features.n_inputs}"
        )
        assert feats.scales.shape == (len(feats.channels),), f"{name}: scales must have one entry per channel"
        for c in feats.channels:
            assert jnp.broadcast_shapes(c.shape, shape) == shape, f"{name}: channel of shape {c.shape} does not broadcast to {shape}"
        assert stats.momentum.shape[:-1] == shape and stats.second_moment.shape == shape, (
            f"{name}: LeafStats shapes {stats.momentum.shape}, {stats.second_moment.shape} for a {shape} tensor"
        )
        _assert_finite((s2, stats, feats), f"{name} outputs for shape {shape}")
        batched = _batched(lambda k: jax.random.normal(k, shape))
        _check_vmap(lambda g: step(state, g, jnp.asarray(0, jnp.int32)), (batched,), f"{name}.update_leaf")


def check_network(network: AbstractNetwork, n_inputs: int, n_globals: int = 2) -> None:
    """Contract of a network: one finite output per head, broadcastable, jit/vmap.

    Also checks the network reads its inputs as documented in
    :class:`LeafFeatures` by comparing against inputs with ``scales`` and
    ``globals`` materialised into channels.
    """
    name = type(network).__name__
    n_channels = n_inputs - n_globals

    def make(key, shape=(5, 3)):
        ks = jax.random.split(key, n_channels + 2)
        channels = tuple(jax.random.normal(k, shape) for k in ks[:n_channels])
        return LeafFeatures(channels, jnp.exp(jax.random.normal(ks[-2], (n_channels,))), jax.random.normal(ks[-1], (n_globals,)))

    f1, f2 = make(jax.random.PRNGKey(1)), make(jax.random.PRNGKey(2))
    out, _ = _jit_twice(network, (f1,), (f2,), f"{name}.__call__")
    assert set(out) == set(network.heads), f"{name}: heads {sorted(out)} != declared {sorted(network.heads)}"
    for head, value in out.items():
        assert jnp.broadcast_shapes(value.shape, (5, 3)) == (5, 3), f"{name}: head {head!r} has shape {value.shape}"
    _assert_finite(out, f"{name} heads")
    dense = f1.dense((5, 3))
    unfolded = LeafFeatures(
        tuple(dense[..., i] for i in range(n_inputs)), jnp.ones((n_inputs,)), jnp.zeros((0,))
    )
    _assert_close(network(unfolded), out, f"{name}: output changes when scales/globals are materialised into channels")
    _check_vmap(network, (_batched(make),), f"{name}.__call__")


def check_optimizer(opt: AbstractOptimizer, params: Any = None) -> None:
    """Contract of a whole optimizer (``init``/``update``), including optax use."""
    name = type(opt).__name__
    params = example_params() if params is None else params
    state = opt.init(params)
    structure = _structure(state)
    grads1 = jax.tree_util.tree_map(lambda p: 0.1 * jnp.ones_like(p), params)
    grads2 = jax.tree_util.tree_map(lambda p: -0.2 * p, params)
    (u1, s1), (u2, _) = _jit_twice(opt.update, (grads1, state, params), (grads2, state, params), f"{name}.update")
    s2 = opt.update(grads2, s1, params)[1]
    for s in (s1, s2):
        assert _structure(s) == structure, f"{name}: state structure/shapes/dtypes change across steps"
    assert _structure(u1) == _structure(params), f"{name}: updates do not match the parameters' structure"
    _assert_finite((u1, u2, s2), f"{name} outputs")
    batched = jax.tree_util.tree_map(lambda p: jnp.stack([p, 0.5 * p + 0.1]), params)
    _check_vmap(lambda p: opt.update(jax.tree_util.tree_map(lambda x: 0.1 * x, p), opt.init(p), p), (batched,), f"{name}.update")
    tx = opt.as_optax()
    updates, _ = tx.update(grads1, tx.init(params), params, value=jnp.asarray(1.0))
    _assert_close(updates, u1, f"{name}.as_optax() disagrees with update")


def check_task(task: AbstractTask) -> None:
    """Contract of a task: finite loss, jit without recompilation, vmap over seeds."""
    name = type(task).__name__

    def loss_at(key):
        k1, k2 = jax.random.split(key)
        params = task.init(k1)
        return task.loss(params, task.sample_batch(k2))

    (l1, _) = _jit_twice(loss_at, (jax.random.PRNGKey(1),), (jax.random.PRNGKey(2),), f"{name}.loss")
    assert l1.shape == (), f"{name}.loss must return a scalar, got shape {l1.shape}"
    _assert_finite(l1, f"{name}.loss")
    assert float(task.normalizer(l1)) <= task.max_meta_loss
    _check_vmap(loss_at, (jax.random.split(jax.random.PRNGKey(3), 2),), f"{name}.loss")


def losses_before_and_after(
    task: AbstractTask,
    tx: Any,
    steps: int = 40,
    key: jax.Array | None = None,
    valid_batch: int = 256,
    valid_key: jax.Array | None = None,
) -> tuple[float, float]:
    """The validation loss of a fresh ``task.init(key)`` and after ``steps`` updates of ``tx``.

    A check that a task can be trained at all: ``tx`` is an optax
    transformation (for example ``optax.adam(1e-2)``), both losses are taken
    on one ``outer_valid`` batch of ``valid_batch`` examples drawn with
    ``valid_key`` (default: derived from ``key``), and the whole run is one
    compiled ``lax.scan``. Assert on the two floats, e.g. that the
    first is near the task's chance loss and the second well below it.
    """
    key = jax.random.PRNGKey(0) if key is None else key
    valid_key = jax.random.fold_in(key, 1) if valid_key is None else valid_key

    @jax.jit
    def run(key, valid_key):
        params = task.init(key)
        valid = task.dataset.sample(valid_key, valid_batch, "outer_valid")

        def step(carry, k):
            p, s = carry
            updates, s = tx.update(jax.grad(task.loss)(p, task.sample_batch(k)), s, p)
            return (optax.apply_updates(p, updates), s), None

        trained = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, steps))[0][0]
        return task.loss(params, valid), task.loss(trained, valid)

    before, after = run(key, valid_key)
    return float(before), float(after)


def check_dataset(dataset: AbstractDataset, batch_size: int = 4) -> None:
    """Contract of a dataset: jit-able sampling with a fixed batch shape."""
    name = type(dataset).__name__
    b1, b2 = _jit_twice(lambda k: dataset.sample(k, batch_size), (jax.random.PRNGKey(1),), (jax.random.PRNGKey(2),), f"{name}.sample")
    for leaf in jax.tree_util.tree_leaves(b1):
        assert leaf.shape[0] == batch_size, f"{name}.sample: leading axis {leaf.shape[0]} != batch size {batch_size}"
    _assert_finite(b1, f"{name} batch")


def check_component(component: Any, **kwargs: Any) -> None:
    """Run the contract check of ``component``'s kind."""
    checks = [
        (AbstractNominalTerm, check_nominal),
        (AbstractPreconditioner, check_preconditioner),
        (AbstractMagnitude, check_magnitude),
        (AbstractFeatures, check_features),
        (AbstractNetwork, check_network),
        (AbstractOptimizer, check_optimizer),
        (AbstractTask, check_task),
        (AbstractDataset, check_dataset),
    ]
    for interface, check in checks:
        if isinstance(component, interface):
            return check(component, **kwargs)
    raise TypeError(f"{component!r} is not an instance of any lofw interface")
