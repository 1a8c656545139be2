"""The student-teacher family, label noise and small batches, against independent computations.

A student-teacher member's targets and loss equal a numpy MLP's, its
normaliser's unit (the loss of predicting 0) matches a large Monte Carlo
estimate, and Adam drives it well below that unit; label noise replaces the
stated fraction of labels (Monte Carlo) and never touches evaluation
batches; a small batch's loss and gradient are the wrapped task's on the
first examples. Each is meta-trainable: a PES estimate over a family is
finite and draws one member per particle.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lofw
from lofw.tasks import build_task
from lofw_plugins.estimator import PES
from lofw_plugins.task.label_noise import NoisyLabels
from lofw_plugins.task.student_teacher import Regression
from lofw_plugins.task.test_functions import solved

KEY = jax.random.PRNGKey(0)


def _numpy_mlp(layers, x, act):
    for layer in layers[:-1]:
        x = act(x @ np.asarray(layer["w"]) + np.asarray(layer["b"]))
    return x @ np.asarray(layers[-1]["w"]) + np.asarray(layers[-1]["b"])


def test_student_teacher_targets_loss_and_unit_match_numpy():
    family = build_task({"name": "student_teacher", "input_dim": 8, "output_dim": 3, "teacher_hidden": [16],
                         "student_hidden": [32, 32], "noise": 0.0, "batch_size": 64})
    member = family.configured(family.sample_config(KEY))
    assert isinstance(member, Regression)
    batch = member.sample_batch(jax.random.PRNGKey(1))
    x = np.asarray(batch["x"])
    np.testing.assert_allclose(batch["y"], _numpy_mlp(member.teacher, x, np.tanh), rtol=1e-5, atol=1e-6)
    params = member.init(jax.random.PRNGKey(2))
    assert [p["w"].shape for p in params] == [(8, 32), (32, 32), (32, 3)]
    residual = _numpy_mlp(params, x, lambda h: np.maximum(h, 0)) - np.asarray(batch["y"])
    np.testing.assert_allclose(member.loss(params, batch), 0.5 * np.mean(np.sum(residual**2, -1)), rtol=1e-5)
    # the unit: 1/2 E||y||^2, against 200000 fresh inputs
    y = _numpy_mlp(member.teacher, np.asarray(jax.random.normal(KEY, (200_000, 8))), np.tanh)
    np.testing.assert_allclose(member.zero_loss, 0.5 * np.mean(np.sum(y**2, -1)), rtol=0.08)  # 4096 probes: sd ~2.5%
    zero = [{"w": jnp.zeros_like(p["w"]), "b": jnp.zeros_like(p["b"])} for p in params]
    np.testing.assert_allclose(member.normalizer(member.loss(zero, batch)), 1.0, atol=0.15)
    assert member.normalizer(jnp.float32(jnp.inf)) == 1.5


def test_student_teacher_episodes_draw_new_teachers_and_are_learnable():
    family = build_task({"name": "student_teacher", "noise": 0.1})
    a, b = (family.configured(family.sample_config(k)) for k in jax.random.split(KEY))
    assert not np.allclose(a.teacher[0]["w"], b.teacher[0]["w"])
    # the unit includes the target noise: 1/2 (E||t(x)||^2 + m noise^2)
    noisy = a.sample_batch(KEY)
    assert abs(float(jnp.mean(jnp.sum((noisy["y"] - jnp.tanh(noisy["x"] @ a.teacher[0]["w"] + a.teacher[0]["b"])
                                       @ a.teacher[1]["w"] - a.teacher[1]["b"]) ** 2, -1))) - 4 * 0.01) < 0.01
    adam = optax.adam(1e-2)

    def step(carry, key):
        params, state = carry
        loss, grad = jax.value_and_grad(a.loss)(params, a.sample_batch(key))
        updates, state = adam.update(grad, state, params)
        return (optax.apply_updates(params, updates), state), a.normalizer(loss)

    params = a.init(KEY)
    _, losses = jax.lax.scan(step, (params, adam.init(params)), jax.random.split(KEY, 500))
    assert float(losses[:10].mean()) > 0.5 and float(losses[-50:].mean()) < 0.2


def test_label_noise_replaces_the_stated_fraction_of_training_labels_only():
    family = build_task({"name": "label_noise", "task": "digits_mlp", "rate": [0.3, 0.3]})
    member = family.configured(family.sample_config(KEY))
    assert isinstance(member, NoisyLabels) and member.classes == 10
    keys = jax.random.split(KEY, 200)
    noisy = jax.vmap(member.sample_batch)(keys)["label"]
    clean = jax.vmap(family.task.sample_batch)(jax.vmap(lambda k: jax.random.split(k)[0])(keys))["label"]
    changed = float(jnp.mean(noisy != clean))  # P = 0.3 * 9/10; 25600 labels: sd 0.003
    assert abs(changed - 0.27) < 0.012
    assert noisy.min() >= 0 and noisy.max() <= 9
    test = member.sample_batch(KEY, "test")
    np.testing.assert_array_equal(test["label"], family.task.sample_batch(jax.random.split(KEY)[0], "test")["label"])
    rates = jax.vmap(build_task({"name": "label_noise", "task": "digits_mlp", "rate": [0.1, 0.5]}).sample_config)(
        jax.random.split(KEY, 4000))[1]
    assert float(rates.min()) >= 0.1 and float(rates.max()) <= 0.5 and abs(float(rates.mean()) - 0.3) < 0.01


def test_small_batch_is_the_wrapped_loss_on_the_first_examples():
    task = build_task({"name": "small_batch", "task": "digits_mlp", "batch_size": 16})
    params = task.init(KEY)
    full = task.task.sample_batch(KEY)
    cut = task.sample_batch(KEY)
    assert cut["image"].shape[0] == 16 and full["image"].shape[0] == 128
    first = {k: v[:16] for k, v in full.items()}
    np.testing.assert_allclose(task.loss(params, cut), task.task.loss(params, first), rtol=1e-6)
    for g, h in zip(jax.tree_util.tree_leaves(jax.grad(task.loss)(params, cut)),
                    jax.tree_util.tree_leaves(jax.grad(task.task.loss)(params, first))):
        np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("spec", [
    {"name": "student_teacher", "noise": 0.05, "batch_size": 32},
    {"name": "label_noise", "task": "digits_mlp", "rate": [0.0, 0.5]},
    {"name": "small_batch", "task": "digits_mlp", "batch_size": 8},
])
def test_a_pes_estimate_over_the_family_is_finite(spec):
    task = build_task(spec)
    opt = lofw.build("star", key=KEY)
    pes = PES(truncation=4, particles=4, horizon=8, std=0.01)
    state = pes.init(opt, task, KEY)
    grad, out = jax.jit(lambda s, k: pes.estimate(opt, task, s, k))(state, KEY)
    assert np.all(np.isfinite(out.meta_loss))
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grad))


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "student_teacher", "input_dim": 0}, "must be positive integers"),
    ({"name": "student_teacher", "noise": -1.0}, "`noise` must be non-negative"),
    ({"name": "label_noise", "task": "digits_mlp", "rate": [0.5, 0.2]}, "0 <= low <= high <= 1"),
    ({"name": "label_noise", "task": "quadratic_family"}, "needs a classification task"),
    ({"name": "small_batch", "task": "digits_mlp", "batch_size": 1000}, "exceeds the wrapped task's batch (128"),
    ({"name": "small_batch", "task": "digits_mlp", "batch_size": 0}, "must be a positive integer"),
])
def test_bad_arguments_are_one_located_config_error(spec, message):
    with pytest.raises(lofw.ConfigError, match="task") as e:
        build_task(spec, where="task")
    assert message in str(e.value)


def test_optax_test_problems_match_their_closed_forms_and_adam_solves_them():
    parabola, rosenbrock = build_task("optax_parabola"), build_task("optax_rosenbrock")
    x = jnp.array([0.5, 2.0, -3.0])
    np.testing.assert_allclose(parabola.loss(x, {}), 0.25 + 9.0 + 16.0, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(parabola.loss)(x, {}), 2 * (np.asarray(x) - [1.0, -1.0, 1.0]), rtol=1e-6)
    y = jnp.array([0.5, 2.0])
    np.testing.assert_allclose(rosenbrock.loss(y, {}), 0.25 + 100 * 1.75**2, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(rosenbrock.loss)(y, {}), [-1.0 - 400 * 0.5 * 1.75, 200 * 1.75], rtol=1e-6)
    assert parabola.normalizer(parabola.loss(parabola.init(KEY), {})) == 1.0
    np.testing.assert_array_equal(parabola.init(KEY), parabola.init(jax.random.PRNGKey(5)))

    for task in (parabola, rosenbrock):  # optax's alias_test: Adam at 0.1 solves both in 10000 steps
        adam = optax.adam(0.1)

        def step(carry, _, task=task, adam=adam):
            params, state = carry
            updates, state = adam.update(jax.grad(task.loss)(params, {}), state, params)
            return (optax.apply_updates(params, updates), state), None

        params = task.init(KEY)
        (params, _), _ = jax.lax.scan(step, (params, adam.init(params)), None, length=10000)
        assert solved(task, params) and not solved(task, task.init(KEY))
