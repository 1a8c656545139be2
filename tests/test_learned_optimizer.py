"""LearnedOptimizer numerics by equivalence with hand-written optimizers."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lofw
from lofw.testing import example_params


def zero_network(opt):
    return eqx.tree_at(
        lambda o: (o.network.weights, o.network.biases),
        opt,
        (tuple(jnp.zeros_like(w) for w in opt.network.weights), tuple(jnp.zeros_like(b) for b in opt.network.biases)),
    )


def adam_aggmo_by_hand(grads_seq, b1=1e-3):
    """NumPy AdamAggMo: mean of 3 momenta over sqrt(v + 1e-6), no bias correction."""
    betas, beta_v = np.array([0.9, 0.99, 0.999]), 0.999
    m = np.zeros((3,) + grads_seq[0].shape)
    v = np.zeros(grads_seq[0].shape)
    updates = []
    for g in grads_seq:
        m = betas.reshape((3,) + (1,) * g.ndim) * m + (1 - betas.reshape((3,) + (1,) * g.ndim)) * g
        v = beta_v * v + (1 - beta_v) * g * g
        updates.append(-b1 * m.mean(0) / np.sqrt(v + 1e-6))
    return updates


def run(opt, params, grads_seq):
    state = opt.init(params)
    out = []
    update = eqx.filter_jit(opt.update)
    for g in grads_seq:
        u, state = update(g, state, params)
        out.append(u)
    return out


def grads_sequence(params, n=4):
    keys = jax.random.split(jax.random.PRNGKey(42), n)
    return [jax.tree_util.tree_map(lambda p, k=k: jax.random.normal(k, p.shape) * 0.3, params) for k in keys]


def test_hyperparam_with_zeroed_network_is_b1_adam_aggmo():
    opt = zero_network(lofw.build("hyperparam"))
    params = example_params()
    seq = grads_sequence(params)
    got = run(opt, params, seq)
    for name in params:
        expected = adam_aggmo_by_hand([np.asarray(g[name], np.float64) for g in seq])
        for t in range(len(seq)):
            np.testing.assert_allclose(np.asarray(got[t][name]), expected[t], rtol=2e-5, atol=1e-9)


def test_star_with_zeroed_network_equals_hyperparam():
    params = example_params()
    seq = grads_sequence(params)
    star = run(zero_network(lofw.build("star")), params, seq)
    hyper = run(zero_network(lofw.build("hyperparam")), params, seq)
    for a, b in zip(star, hyper):
        for name in params:
            np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]))


def test_nominal_log_scale_scales_the_nominal_term():
    opt = zero_network(lofw.build("hyperparam"))
    scaled = eqx.tree_at(lambda o: o.nominal_log_scale, opt, jnp.asarray(np.log(3.0), jnp.float32))
    params = example_params()
    seq = grads_sequence(params, 2)
    for a, b in zip(run(opt, params, seq), run(scaled, params, seq)):
        for name in params:
            np.testing.assert_allclose(np.asarray(b[name]), 3.0 * np.asarray(a[name]), rtol=1e-5)


def test_blackbox_update_is_b3_direction_times_exp_magnitude():
    opt = lofw.build("blackbox")
    params = {"w": jax.random.normal(jax.random.PRNGKey(0), (4, 3))}
    grads = {"w": jax.random.normal(jax.random.PRNGKey(1), (4, 3))}
    state = opt.init(params)
    _, _, feats = opt.features.update_leaf(grads["w"], params["w"], state.leaves["w"], state.step)
    heads = opt.network(feats)
    updates, _ = opt.update(grads, state, params)
    expected = -1e-3 * heads["direction"] * jnp.exp(1e-3 * heads["blackbox_magnitude"])
    np.testing.assert_allclose(np.asarray(updates["w"]), np.asarray(expected), rtol=1e-6)


def test_star_blackbox_term_is_rms_preconditioned():
    star = lofw.build("star")
    no_pre = lofw.build("star_no_precond")
    params = {"w": jax.random.normal(jax.random.PRNGKey(0), (4, 3))}
    grads = {"w": jax.random.normal(jax.random.PRNGKey(1), (4, 3))}
    s = star.init(params)
    _, stats, feats = star.features.update_leaf(grads["w"], params["w"], s.leaves["w"], s.step)
    heads = star.network(feats)
    nominal = 1e-3 * jnp.exp(1e-3 * heads["nominal_magnitude"]) * jnp.mean(stats.momentum, -1) / jnp.sqrt(stats.second_moment + 1e-6)
    blackbox = heads["direction"] * jnp.exp(1e-3 * heads["blackbox_magnitude"])
    u_star, _ = star.update(grads, s, params)
    u_no_pre, _ = no_pre.update(grads, no_pre.init(params), params)
    assert (star.blackbox_scale, no_pre.blackbox_scale) == (1e-3, 1e-3)  # the paper's beta_3 (Appendix B)
    expected_star = nominal + 1e-3 * blackbox / jnp.sqrt(stats.second_moment + 1e-6)
    np.testing.assert_allclose(np.asarray(u_star["w"]), np.asarray(-expected_star), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(u_no_pre["w"]), np.asarray(-(nominal + 1e-3 * blackbox)), rtol=1e-5)


def test_mlp_matches_reference_loops():
    from star_reference import mlp

    opt = lofw.build("star", key=jax.random.PRNGKey(3))
    p = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    _, _, feats = opt.features.update_leaf(p * 0.3, p, opt.features.init_leaf(p), jnp.asarray(7))
    heads = opt.network(feats)
    expected = mlp(np.asarray(feats.dense((5, 4)), np.float64), [np.asarray(w) for w in opt.network.weights],
                   [np.asarray(b) for b in opt.network.biases])
    for j, name in enumerate(opt.network.heads):
        np.testing.assert_allclose(np.asarray(heads[name]), expected[..., j], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("recipe, count", [("star", 203), ("blackbox", 197), ("hyperparam", 193),
                                           ("star_no_precond", 203), ("star_no_nominal", 197), ("star_stable", 203),
                                           ("star_small_blackbox", 203), ("star_zero_direction", 203)])
def test_meta_parameter_counts(recipe, count):
    assert lofw.count_meta_parameters(lofw.build(recipe)) == count


def test_mlp_initialisation_is_truncated_normal_over_sqrt_fan_in():
    opt = lofw.build("star", key=jax.random.PRNGKey(0))
    w0 = np.asarray(opt.network.weights[0])
    assert w0.shape == (39, 4)
    assert np.all(np.abs(w0) <= 2.0 / np.sqrt(39) + 1e-7)
    assert all(np.all(np.asarray(b) == 0) for b in opt.network.biases)
    # std of a standard normal truncated at +-2 is 0.8796
    big = lofw.build({"extends": "star", "network": {"hidden_sizes": [400, 4]}})
    np.testing.assert_allclose(np.asarray(big.network.weights[0]).std() * np.sqrt(39), 0.8796, rtol=0.03)


def test_as_optax_in_a_training_loop_reduces_a_quadratic():
    target = jnp.arange(6.0).reshape(2, 3)
    loss = lambda p: jnp.sum((p["w"] - target) ** 2) + jnp.sum(p["b"] ** 2)  # noqa: E731
    params = {"w": jnp.zeros((2, 3)), "b": jnp.ones(3)}
    tx = optax.chain(lofw.build("hyperparam").as_optax(), optax.scale(30.0))
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = tx.update(grads, state, params, value=value)
        return optax.apply_updates(params, updates), state, value

    first = None
    for _ in range(300):
        params, state, value = step(params, state)
        first = value if first is None else first
    assert float(loss(params)) < 0.05 * float(first)


def test_meta_gradient_flows_through_update():
    params = {"w": jnp.linspace(-1.0, 1.0, 12).reshape(4, 3), "s": jnp.asarray(0.7)}
    grads = jax.tree_util.tree_map(lambda p: 0.5 * p, params)
    opt = lofw.build("star")
    theta, static = eqx.partition(opt, eqx.is_inexact_array)

    def total_update(theta):
        o = eqx.combine(theta, static)
        u, _ = o.update(grads, o.init(params), params)
        return sum(jnp.sum(x) for x in jax.tree_util.tree_leaves(u))

    g = jax.jit(jax.grad(total_update))(theta)
    leaves = jax.tree_util.tree_leaves(g)
    assert sum(x.size for x in leaves) == 203
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)
    assert float(jnp.abs(g.nominal_log_scale)) > 0


def test_untrained_small_blackbox_star_trains_digits_stably():
    """lofw's `star_small_blackbox` variant: b3 = 1e-6 offsets the
    preconditioner's gain of up to 1000 on the first steps, so an untrained
    optimizer does not blow up."""
    from lofw.tasks import build_task

    task = build_task("digits_mlp")
    tx = lofw.build("star_small_blackbox").as_optax()

    @jax.jit
    def losses(key):
        params = task.init(key)

        def step(carry, k):
            p, s = carry
            loss, g = jax.value_and_grad(task.loss)(p, task.sample_batch(k))
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), loss

        return jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, 150))[1]

    curve = np.asarray(losses(jax.random.PRNGKey(0)))
    assert curve.max() <= curve[0] + 0.1, f"loss rose to {curve.max():.2f} from {curve[0]:.2f}"
    assert curve[-10:].mean() < 0.6 * curve[0]


@pytest.mark.parametrize("recipe, heads, preconditioned, has_b1", [
    ("star", ("direction", "blackbox_magnitude", "nominal_magnitude"), True, True),
    ("hyperparam", ("nominal_magnitude",), False, True),
    ("blackbox", ("direction", "blackbox_magnitude"), False, False),
])
def test_recipe_updates_match_the_papers_update_in_numpy(recipe, heads, preconditioned, has_b1):
    """The first three updates of each paper recipe, with meta-parameters fixed
    here (not lofw's init), against star_reference.reference_update: the
    features, the MLP, b1 = 1e-3 e^0.3 and the paper's b3 = 1e-3 (Appendix B)."""
    from star_reference import ReferenceAccumulators, reference_update

    rng = np.random.default_rng(42)
    sizes = (39, 4, 4, len(heads))
    weights = [rng.normal(0.0, 2.0 / np.sqrt(i), (i, o)) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0.0, 0.5, (o,)) for o in sizes[1:]]
    opt = lofw.build(recipe)
    assert opt.network.heads == heads and opt.blackbox_scale == 1e-3
    opt = eqx.tree_at(lambda o: (o.network.weights, o.network.biases), opt,
                      (tuple(jnp.asarray(w, jnp.float32) for w in weights), tuple(jnp.asarray(b, jnp.float32) for b in biases)))
    if has_b1:
        opt = eqx.tree_at(lambda o: o.nominal_log_scale, opt, jnp.float32(0.3))
    params = {"b": jnp.asarray(rng.normal(size=(6,)), jnp.float32), "w": jnp.asarray(rng.normal(size=(4, 6)), jnp.float32)}
    refs = {k: ReferenceAccumulators(v.shape) for k, v in params.items()}
    state = opt.init(params)
    for t in range(3):
        grads = {k: jnp.asarray(rng.normal(0.0, 0.1 + t, v.shape), jnp.float32) for k, v in params.items()}
        updates, state = opt.update(grads, state, params)
        for k in params:
            refs[k].step(np.asarray(grads[k]))
            expected = reference_update(refs[k], np.asarray(grads[k]), np.asarray(params[k]), t, weights, biases, heads,
                                        b1=1e-3 * np.exp(0.3), b3=1e-3, preconditioned=preconditioned)
            np.testing.assert_allclose(np.asarray(updates[k]), expected, rtol=1e-3, atol=1e-9, err_msg=f"{k}, step {t}")
        params = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)


def test_zero_direction_head_makes_an_untrained_star_a_hyperparam_controller():
    opt = lofw.build({"extends": "star", "network": {"zero_heads": ["direction"]}}, key=jax.random.PRNGKey(5))
    params = {"w": jax.random.normal(jax.random.PRNGKey(0), (4, 3))}
    grads = {"w": jax.random.normal(jax.random.PRNGKey(1), (4, 3))}
    s = opt.init(params)
    _, stats, feats = opt.features.update_leaf(grads["w"], params["w"], s.leaves["w"], s.step)
    heads = opt.network(feats)
    assert np.all(np.asarray(heads["direction"]) == 0.0)
    assert np.any(np.asarray(heads["nominal_magnitude"]) != 0.0)   # the other heads are drawn as usual
    nominal = 1e-3 * jnp.exp(1e-3 * heads["nominal_magnitude"]) * jnp.mean(stats.momentum, -1) / jnp.sqrt(stats.second_moment + 1e-6)
    np.testing.assert_allclose(np.asarray(opt.update(grads, s, params)[0]["w"]), np.asarray(-nominal), rtol=1e-6)
    with pytest.raises(lofw.ConfigError, match="zero_heads names \\['dir'\\], which are not heads"):
        lofw.build({"extends": "star", "network": {"zero_heads": ["dir"]}})


def test_a_state_saved_in_the_tuple_layout_loads_into_the_params_structured_one(tmp_path):
    """Checkpoints written when ``leaves`` was a tuple, one entry per tensor in flattening order, still load."""
    opt = lofw.build("star")
    params = {"w": jnp.ones((8, 16)), "b": jnp.ones(16), "s": jnp.ones(())}
    per_tensor = tuple(opt.features.init_leaf(p) for p in jax.tree_util.tree_leaves(params))   # b, s, w
    arrays, structure = jax.tree_util.tree_flatten(per_tensor)
    keys = jax.random.split(jax.random.PRNGKey(3), len(arrays))
    per_tensor = jax.tree_util.tree_unflatten(structure, [jax.random.normal(k, a.shape) for k, a in zip(keys, arrays)])
    old = lofw.LearnedOptimizerState(leaves=per_tensor, step=jnp.asarray(7, jnp.int32))
    eqx.tree_serialise_leaves(tmp_path / "old.eqx", old)
    new = eqx.tree_deserialise_leaves(tmp_path / "old.eqx", opt.init(params))
    assert set(new.leaves) == {"w", "b", "s"} and int(new.step) == 7
    for i, name in enumerate(("b", "s", "w")):
        assert jax.tree_util.tree_structure(new.leaves[name]) == jax.tree_util.tree_structure(old.leaves[i])
        for a, b in zip(jax.tree_util.tree_leaves(new.leaves[name]), jax.tree_util.tree_leaves(old.leaves[i])):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
