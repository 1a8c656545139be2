"""Task families and task wrappers (reparam, init_scale, gradient_noise, random_quadratic).

Each wrapper is checked against an independent computation: a
reparameterised member's loss at the mapped parameters equals the wrapped
task's, and its gradient is the chain rule's; gradient noise leaves the loss
value alone and adds exactly its noise to ``jax.grad``; the quadratic
family's curvatures follow the stated log-uniform law (Monte Carlo). The
estimators draw one member per episode, and a plain task's draws are
unchanged by the family machinery.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lofw
from lofw.evaluation.curves import loss_curves
from lofw.interfaces.task import draw_config
from lofw.tasks import build_task
from lofw_plugins.estimator import PES
from lofw_plugins.estimator.truncated import fresh_inner_state
from lofw_plugins.task.reparam import Reparameterised

KEY = jax.random.PRNGKey(0)


def _tree_close(a, b, rtol=1e-5, atol=1e-7):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.mark.parametrize("level", ["global", "tensor", "parameter"])
def test_reparameterised_loss_and_gradient_follow_the_change_of_variables(level):
    family = build_task({"name": "reparam", "task": "digits_mlp", "levels": [level]})
    scales = family.sample_config(KEY)[1]
    member = family.configured(family.sample_config(KEY))
    assert isinstance(member, Reparameterised)
    base = family.task
    p = base.init(jax.random.PRNGKey(1))
    q = member.init(jax.random.PRNGKey(1))
    _tree_close(q, jax.tree_util.tree_map(lambda a, s: a / s, p, scales))  # q0 = p0 / s
    batch = base.sample_batch(jax.random.PRNGKey(2))
    np.testing.assert_allclose(member.loss(q, batch), base.loss(p, batch), rtol=1e-5)
    # dL/dq = s * dL/dp at p = s * q
    _tree_close(jax.grad(member.loss)(q, batch),
                jax.tree_util.tree_map(lambda g, s: s * g, jax.grad(base.loss)(p, batch), scales), rtol=1e-4, atol=1e-6)
    values = [np.asarray(s) for s in jax.tree_util.tree_leaves(scales)]
    distinct = len(np.unique(np.concatenate([v.ravel() for v in values])))
    if level == "parameter":  # one draw per element (float32 draws may collide now and then)
        assert distinct >= 0.99 * sum(v.size for v in values)
    else:
        assert distinct == {"global": 1, "tensor": len(values)}[level]


def test_reparam_scales_are_log_uniform_in_the_range_and_levels_are_drawn_by_weight():
    family = build_task({"name": "reparam", "task": "digits_mlp", "levels": ["none", "none", "global"],
                         "range": [1e-3, 1e3]})
    configs = jax.vmap(family.sample_config)(jax.random.split(KEY, 4000))
    first = np.asarray(jax.tree_util.tree_leaves(configs[1])[0]).reshape(4000, -1)[:, 0]
    none = first == 1.0
    assert abs(none.mean() - 2 / 3) < 0.03  # P(none) = 2/3, 4000 draws: sd 0.0075
    logs = np.log10(first[~none])
    assert logs.min() >= -3 and logs.max() <= 3
    assert abs(logs.mean()) < 0.15 and abs(logs.std() - 6 / np.sqrt(12)) < 0.1  # U(-3, 3): sd 1.732


def test_init_scale_multiplies_the_initial_parameters_only():
    family = build_task({"name": "init_scale", "task": "digits_mlp", "range": [0.5, 2.0]})
    config = family.sample_config(KEY)
    member = family.configured(config)
    scale = float(config[1])
    assert 0.5 <= scale <= 2.0
    _tree_close(member.init(KEY), jax.tree_util.tree_map(lambda p: scale * p, family.task.init(KEY)))
    params, batch = family.task.init(KEY), family.sample_batch(KEY)
    assert member.loss(params, batch) == family.task.loss(params, batch)


def test_gradient_noise_keeps_the_loss_and_adds_its_noise_to_the_gradient():
    task = build_task({"name": "gradient_noise", "task": "digits_mlp", "std": 0.5})
    params = task.init(KEY)
    batch = task.sample_batch(jax.random.PRNGKey(3))
    assert task.loss(params, batch) == task.task.loss(params, batch["batch"])
    noise = task.noise(params, batch["noise"])
    _tree_close(jax.grad(task.loss)(params, batch),
                jax.tree_util.tree_map(jnp.add, jax.grad(task.task.loss)(params, batch["batch"]), noise), atol=1e-6)
    spread = np.concatenate([np.asarray(n).ravel() for n in jax.tree_util.tree_leaves(noise)])
    assert abs(spread.std() - 0.5) < 0.02


def test_random_quadratic_members_follow_the_stated_law():
    family = build_task("quadratic_family")
    configs = jax.vmap(family.sample_config)(jax.random.split(KEY, 3000))
    curvature = np.asarray(configs["curvature"])
    top, bottom = curvature.max(axis=1), curvature.min(axis=1)
    assert top.max() <= 100.0 * (1 + 1e-6) and bottom.min() >= 0.01 / 1000 * (1 - 1e-6)
    # log10 of the largest curvature is close to log10(a) ~ U(-2, 2) (32 draws of u: max u near 0)
    assert abs(np.log10(top).mean()) < 0.2
    member = family.configured(jax.tree_util.tree_map(lambda x: x[0], configs))
    x = member.init(KEY)
    loss = member.loss(x, member.sample_batch(KEY))
    expected = 0.5 * np.sum(curvature[0] * (np.asarray(x) - np.asarray(configs["centre"][0])) ** 2)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(member.normalizer(loss), min(expected / curvature[0].sum(), 1.5), rtol=1e-5)
    assert member.normalizer(jnp.float32(jnp.nan)) == 1.5


def test_each_episode_draws_its_own_member_and_a_plain_task_is_unchanged():
    opt = lofw.build("star", key=KEY)
    plain = build_task("digits_mlp")
    state = fresh_inner_state(opt, plain, KEY)
    assert state.config is None and state.length is None
    _tree_close(state.params, plain.init(KEY), rtol=0, atol=0)  # the init key is not consumed by the family draw
    family = build_task("quadratic_family")
    pes = PES(truncation=5, particles=4, horizon=10, std=0.01)
    est = pes.init(opt, family, KEY)
    curvatures = np.asarray(est.branches.config["curvature"][:, 0])
    assert len({tuple(c) for c in curvatures}) == 4  # one member per particle
    np.testing.assert_array_equal(est.branches.config["curvature"][:, 0], est.branches.config["curvature"][:, 1])
    out = jax.jit(lambda s, k: pes.particle_gradients(opt, family, s, k))(est, KEY)
    out = jax.jit(lambda s, k: pes.particle_gradients(opt, family, s, k))(out.state, jax.random.PRNGKey(1))
    renewed = np.asarray(out.state.branches.config["curvature"][:, 0])
    assert all(np.isfinite(out.meta_loss)) and not np.allclose(renewed, curvatures)  # episodes of 10 steps ended


def test_evaluation_trains_a_member_per_seed():
    family = build_task("quadratic_family")
    keys = jax.random.split(KEY, 3)
    curves = np.asarray(loss_curves(lofw.build("star", key=KEY), family, keys, steps=2))
    for k, key in enumerate(keys):
        k_init, _ = jax.random.split(key)
        member = family.configured(draw_config(family, k_init))
        x = member.init(k_init)
        np.testing.assert_allclose(curves[k, 0], 0.5 * np.sum(member.curvature * (x - member.centre) ** 2), rtol=1e-5)


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "reparam", "task": "digits_mlp", "range": [0.0, 1.0]}, "0 < low <= high"),
    ({"name": "reparam", "task": "digits_mlp", "range": [-1.0, 1.0]}, "0 < low <= high"),
    ({"name": "reparam", "task": "digits_mlp", "levels": []}, "`levels` is empty"),
    ({"name": "reparam", "task": "digits_mlp", "levels": ["row"]}, "unknown level(s) 'row'"),
    ({"name": "reparam"}, "wraps a task: give it `task`"),
    ({"name": "reparam", "task": "nope"}, "task.task: unknown task 'nope'"),
    ({"name": "init_scale", "task": "digits_mlp", "range": [2.0, 1.0]}, "0 < low <= high"),
    ({"name": "gradient_noise", "task": "digits_mlp", "std": 0.0}, "`std` must be positive"),
    ({"name": "random_quadratic", "condition": [0.5, 2.0]}, "1 <= low <= high"),
])
def test_bad_family_arguments_are_one_located_config_error(spec, message):
    with pytest.raises(lofw.ConfigError, match="task") as e:
        build_task(spec, where="task")
    assert message in str(e.value)
