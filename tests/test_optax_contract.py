"""Every recipe, through ``as_optax()``, keeps the contract optax's own tests hold its optimizers to.

Extra arguments to ``update``, dtypes of updates and state (under ``jit`` and
``lax.cond``), ``MultiSteps``, ``masked`` and ``chain``, donated buffers,
``tree_map_params`` and a state sharded like the parameters. Checks whose
outcome depends on the components run for every recipe, traced with
``jax.eval_shape`` (dtypes and ``lax.cond``'s branch types are fixed at trace
time); the wrappers, which see only ``init``/``update``, run compiled on
``star``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from forced_devices import forced_devices_env

import lofw
from lofw.learned_optimizer import stop_at_leaf_states

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(lofw.load_registry().recipes)


def small_params(dtype=jnp.float32, key=0) -> dict[str, jax.Array]:
    """A factored (8, 16) matrix, a (16,) vector and a scalar."""
    kw, kb, ks = jax.random.split(jax.random.PRNGKey(key), 3)
    return {
        "w": jax.random.normal(kw, (8, 16)).astype(dtype),
        "b": jax.random.normal(kb, (16,)).astype(dtype),
        "s": jax.random.normal(ks, ()).astype(dtype),
    }


def grads_like(params, key=1, scale=0.3):
    keys = dict(zip(sorted(params), jax.random.split(jax.random.PRNGKey(key), len(params))))
    return {k: (scale * jax.random.normal(keys[k], p.shape)).astype(p.dtype) for k, p in params.items()}


def dtypes(tree):
    return jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), tree)


def assert_trees_equal(a, b, exact=True):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        if exact:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:
            np.testing.assert_allclose(np.asarray(x, np.float32), np.asarray(y, np.float32), rtol=2e-5, atol=1e-7)


@pytest.fixture(scope="module")
def star():
    return lofw.build("star")


def two_steps_through_cond(tx, params):
    """init, an update with extra arguments, ``lax.cond`` between the two states, another update."""
    grads = jax.tree_util.tree_map(lambda p: (0.1 * p).astype(p.dtype), params)
    s0 = tx.init(params)
    u1, s1 = tx.update(grads, s0, params, value=jnp.asarray(1.0), loss=2.0, anything_else="ignored")
    s = jax.lax.cond(jnp.asarray(True), lambda: s0, lambda: s1)
    u2, s2 = tx.update(grads, s, params)
    return s0, (u1, s1), (u2, s2)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_keeps_dtypes_through_jit_and_cond_and_takes_extra_arguments(recipe):
    tx = lofw.build(recipe).as_optax()
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        params = jax.tree_util.tree_map(lambda p, d=dtype: jax.ShapeDtypeStruct(p.shape, d), small_params())
        s0, (u1, s1), (u2, s2) = jax.eval_shape(jax.jit(lambda p: two_steps_through_cond(tx, p)), params)
        assert dtypes(u1) == dtypes(u2) == dtypes(params), f"{recipe}: updates of {dtype.__name__} params"
        assert dtypes(s1) == dtypes(s2) == dtypes(s0), f"{recipe}: state changes with {dtype.__name__} params"


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16], ids=lambda d: d.__name__)
def test_compiled_update_keeps_the_params_dtype_and_is_finite(star, dtype):
    params = small_params(dtype)
    s0, (u1, _), (u2, s2) = jax.jit(lambda p: two_steps_through_cond(star.as_optax(), p))(params)
    assert dtypes(u1) == dtypes(u2) == dtypes(params)
    assert dtypes(s2) == dtypes(s0)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves((u1, u2, s2)))
    assert_trees_equal(u2, u1)   # cond took the init state: the same first step again


def test_as_optax_ignores_extra_arguments_and_requires_params(star):
    tx = star.as_optax()
    params = small_params()
    grads = grads_like(params)
    state = tx.init(params)

    @jax.jit
    def both(grads, state, params):
        extra = tx.update(grads, state, params, value=jnp.asarray(1.0), loss=1.0, anything_else="ignored")[0]
        return extra, star.update(grads, state, params)[0]

    assert_trees_equal(*both(grads, state, params))
    with pytest.raises(ValueError, match="reads the parameters"):
        tx.update(grads, state)


def test_multi_steps_applies_the_mean_gradient_every_second_step(star):
    params = small_params()
    g1, g2 = grads_like(params, key=1), grads_like(params, key=2)
    tx = optax.MultiSteps(star.as_optax(), every_k_schedule=2)
    update = jax.jit(tx.update)
    state = tx.init(params)
    u1, state = update(g1, state, params)
    assert all(bool(jnp.all(x == 0)) for x in jax.tree_util.tree_leaves(u1))
    u2, state = update(g2, state, params)
    mean = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, g1, g2)
    expected, inner = star.update(mean, star.init(params), params)
    assert_trees_equal(u2, expected, exact=False)
    assert int(state.inner_opt_state.step) == 1
    assert_trees_equal(state.inner_opt_state.leaves, inner.leaves, exact=False)


def test_masked_and_chained_with_clipping(star):
    params = small_params()
    grads = grads_like(params, scale=3.0)   # global norm well above 1
    mask = {"w": True, "b": False, "s": True}
    tx = optax.chain(
        optax.masked(star.as_optax(), mask),
        optax.masked(optax.sgd(0.1), {k: not v for k, v in mask.items()}),
    )
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    sub = {k: params[k] for k in ("w", "s")}
    expected, _ = star.update({k: grads[k] for k in sub}, star.init(sub), sub)
    assert_trees_equal({k: updates[k] for k in sub}, expected, exact=False)
    np.testing.assert_allclose(np.asarray(updates["b"]), -0.1 * np.asarray(grads["b"]), rtol=1e-6)

    clipped = optax.chain(optax.clip_by_global_norm(1.0), star.as_optax())
    updates, _ = jax.jit(clipped.update)(grads, clipped.init(params), params)
    norm = optax.tree.norm(grads)
    expected, _ = star.update(jax.tree_util.tree_map(lambda g: g / norm, grads), star.init(params), params)
    assert_trees_equal(updates, expected, exact=False)


def test_donated_params_and_state_give_the_same_step(star):
    tx = star.as_optax()

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    def two_steps(jitted):
        params = small_params()
        state = tx.init(params)
        for key in (1, 2):
            params, state = jitted(params, state, grads_like(params, key=key))
        return params, state

    plain = two_steps(jax.jit(step))
    donated = two_steps(jax.jit(step, donate_argnums=(0, 1)))
    assert_trees_equal(donated, plain)


def test_tree_map_params_maps_every_per_parameter_state_array_and_not_the_step(star):
    tx = star.as_optax()
    params = small_params()
    state = tx.update(grads_like(params), tx.init(params), params)[1]
    mapped = optax.tree_utils.tree_map_params(tx, lambda x: x + 1.0, state)
    assert jax.tree_util.tree_structure(mapped) == jax.tree_util.tree_structure(state)
    assert_trees_equal(mapped.leaves, jax.tree_util.tree_map(lambda x: x + 1.0, state.leaves))
    assert mapped.step.dtype == jnp.int32 and int(mapped.step) == 1
    with_step = optax.tree_utils.tree_map_params(tx, lambda x: x, state, transform_non_params=lambda t: t + 10)
    assert int(with_step.step) == 11
    assert_trees_equal(with_step.leaves, state.leaves)
    # the per-parameter arrays: momenta, second moments, factored statistics of w, diagonal EMAs of b and s
    assert len(jax.tree_util.tree_leaves(state.leaves)) == 10

    chained = optax.chain(optax.clip_by_global_norm(1.0), tx)
    mapped = optax.tree_utils.tree_map_params(chained, lambda x: x + 1.0, chained.init(params))
    assert_trees_equal(mapped[1].leaves, jax.tree_util.tree_map(lambda x: x + 1.0, tx.init(params).leaves))


def test_tree_map_params_with_parameter_shaped_arguments_sees_whole_leaf_states(star):
    tx = star.as_optax()
    params = small_params()
    state = tx.init(params)
    seen = optax.tree_utils.tree_map_params(
        tx, lambda s, p, name: (type(s).__name__, s.second_moment.shape == p.shape, name), state, params,
        {k: k for k in params}, is_leaf=stop_at_leaf_states(star, params), transform_non_params=lambda _: None,
    )
    assert seen.leaves == {k: ("AdafactorLeafState", True, k) for k in params}
    assert seen.step is None
    shapes = jax.tree_util.tree_map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    assert stop_at_leaf_states(star, shapes)(state.leaves["w"])
    assert not stop_at_leaf_states(star, shapes)(state.leaves)


def test_tree_map_params_on_the_dense_preconditioner_leaves_its_step_counter():
    opt = lofw.components("optimizer")["dense_preconditioner"](dim=8 * 16 + 16 + 1)
    tx = opt.as_optax()
    params = small_params()
    state = tx.update(grads_like(params), tx.init(params), params)[1]
    assert optax.tree_utils.tree_map_params(tx, lambda x: x + 1, state) == state   # nothing per parameter
    assert int(optax.tree_utils.tree_map_params(tx, lambda x: x, state, transform_non_params=lambda t: t + 10).step) == 11


#: Runs in a subprocess that sees 4 CPU devices; prints "ok" when the sharded step equals the unsharded one.
SHARDED = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, optax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import lofw
    from lofw.learned_optimizer import stop_at_leaf_states

    assert jax.device_count() == 4, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("x",))
    kw, kb, ks, kg = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {"w": jax.random.normal(kw, (8, 16)), "b": jax.random.normal(kb, (16,)), "s": jnp.asarray(0.5)}
    grads = jax.tree_util.tree_map(lambda p: 0.3 * jnp.cos(3.0 * p), params)
    specs = {"w": P("x", None), "b": P(), "s": P()}
    opt = lofw.build("star")
    tx = opt.as_optax()
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    state = tx.init(params)
    expected = step(grads, step(grads, state, params)[1], params)

    def like_param(leaf_state, param, spec):
        def sharding(a):
            if a.shape == param.shape:
                return NamedSharding(mesh, spec)
            if a.shape[1:] == param.shape:          # the momenta: decays on a leading axis
                return NamedSharding(mesh, P(None, *spec))
            return NamedSharding(mesh, P())         # factored and diagonal statistics
        return jax.tree_util.tree_map(lambda a: jax.device_put(a, sharding(a)), leaf_state)

    placed = optax.tree_utils.tree_map_params(
        tx, like_param, state, params, specs, is_leaf=stop_at_leaf_states(opt, params),
        transform_non_params=lambda t: jax.device_put(t, NamedSharding(mesh, P())),
    )
    assert placed.leaves["w"].momentum.sharding.spec == P(None, "x", None), placed.leaves["w"].momentum.sharding
    assert placed.leaves["w"].second_moment.sharding.spec == P("x", None)
    assert placed.leaves["w"].row.sharding.is_fully_replicated
    put = lambda tree: {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in tree.items()}
    sharded_params, sharded_grads = put(params), put(grads)
    got = step(sharded_grads, step(sharded_grads, placed, sharded_params)[1], sharded_params)
    assert got[0]["w"].sharding.is_equivalent_to(NamedSharding(mesh, specs["w"]), 2), got[0]["w"].sharding
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-8)
    print("ok")
    """
)


def test_state_sharded_like_the_parameters_gives_the_unsharded_update():
    proc = subprocess.run(
        [sys.executable, "-c", SHARDED], env=forced_devices_env(4), cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
