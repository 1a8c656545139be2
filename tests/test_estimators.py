"""PES / ES / TBPTT against independent computations on a quadratic task.

The task: ``L(p) = 1/2 sum_j a_j p_j^2`` from a fixed ``p0``, trained by
plain gradient descent with a learned scalar ``theta = log(lr)``
(``p <- p - exp(theta) grad``); episodes of ``H`` steps restart from ``p0``.
The reference below re-implements that inner loop in plain Python (no lofw
code), with a separate ``theta_j`` for each truncation ``j``.

PES / ES: the gradient of the Gaussian-smoothed meta-loss of truncation
``k`` is ``d/dtheta E_eps[window_k(theta + eps_0, ..., theta + eps_k)]``,
computed by Gauss-Hermite quadrature (exact to ~1e-7 here), and compared with
the mean of many particles' estimates. Tolerance: 4.5 standard errors of
that mean (from the particles' own spread), i.e. a false-failure rate
below 1e-5 per comparison; the test also checks the estimate is not zero and
that the reference's off-by-one bookkeeping would have been detected.
"""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lofw
from lofw_plugins.estimator import ES, PES, TBPTT
from lofw_plugins.estimator.truncated import unroll

CURVATURE = np.array([1.0, 0.3], np.float32)
P0 = np.array([1.0, -2.0], np.float32)
THETA = float(np.log(0.4))
SIGMA = 0.1
Z_TOL = 4.5


class Quadratic(lofw.AbstractTask):
    """Deterministic quadratic bowl; the key is ignored, so inits are all ``P0``."""

    def init(self, key):
        return jnp.asarray(P0)

    def sample_batch(self, key, split="train"):
        return {"x": jnp.zeros(())}

    def loss(self, params, batch):
        return 0.5 * jnp.sum(jnp.asarray(CURVATURE) * params**2)


class ScalarLR(lofw.AbstractOptimizer):
    """Gradient descent with a learned log learning rate."""

    log_lr: jax.Array

    def init(self, params):
        return ()

    def update(self, grads, state, params):
        return jax.tree_util.tree_map(lambda g: -jnp.exp(self.log_lr) * g, grads), state


def reference_losses(thetas, T, n_steps, H, offset=0):
    """Per-step losses of a run whose truncation ``j`` uses ``thetas[j]``."""
    p, step, losses = jnp.asarray(P0), offset, []
    for t in range(n_steps):
        losses.append(0.5 * jnp.sum(jnp.asarray(CURVATURE) * p**2))
        p = p - jnp.exp(thetas[t // T]) * jnp.asarray(CURVATURE) * p
        step += 1
        if step >= H:
            p, step = jnp.asarray(P0), 0
    return losses


def reference_window(thetas, k, T, H, offset=0):
    """Mean loss of truncation ``k``."""
    return jnp.mean(jnp.stack(reference_losses(thetas, T, T * (k + 1), H, offset)[k * T :]))


def smoothed_gradient(k, T, H, differentiate=None, objective=None, n_nodes=16):
    """``d/dtheta E[objective(theta + eps_0, ..., theta + eps_k)]`` by Gauss-Hermite quadrature.

    ``objective`` defaults to the mean loss of truncation ``k``;
    ``differentiate``: indices of the truncations whose theta is
    differentiated (default all; ES differentiates only the last one).
    """
    x, w = np.polynomial.hermite.hermgauss(n_nodes)
    nodes, weights = np.sqrt(2.0) * SIGMA * x, w / np.sqrt(np.pi)
    grid = np.array(list(itertools.product(range(n_nodes), repeat=k + 1)))
    offsets = jnp.asarray(nodes[grid], jnp.float32)  # [n_nodes^(k+1), k+1]
    grid_weights = jnp.asarray(np.prod(weights[grid], axis=1), jnp.float32)
    mask = jnp.asarray([j in (range(k + 1) if differentiate is None else differentiate) for j in range(k + 1)])
    objective = objective or (lambda thetas: reference_window(thetas, k, T, H))

    def smoothed(theta):
        base = jnp.where(mask, theta, jax.lax.stop_gradient(theta))
        values = jax.vmap(lambda o: objective(list(base + o)))(offsets)
        return jnp.sum(grid_weights * values)

    return float(jax.jit(jax.grad(smoothed))(jnp.float32(THETA)))


def estimates(estimator, calls, seed=0):
    """Per-particle estimates of ``calls`` consecutive meta-steps."""
    opt, task = ScalarLR(jnp.float32(THETA)), Quadratic()
    state = estimator.init(opt, task, jax.random.PRNGKey(seed))
    step = eqx.filter_jit(estimator.particle_gradients)
    out = []
    for c in range(calls):
        o = step(opt, task, state, jax.random.PRNGKey(1000 * seed + c + 1))
        state = o.state
        out.append(np.asarray(o.gradient.log_lr, np.float64))
    return out


def assert_matches(samples, expected, what):
    mean, se = samples.mean(), samples.std(ddof=1) / np.sqrt(samples.size)
    assert abs(expected) > 5 * se, f"{what}: test too weak (expected {expected}, se {se})"
    z = (mean - expected) / se
    assert abs(z) < Z_TOL, f"{what}: mean estimate {mean:.5f} vs smoothed gradient {expected:.5f} ({z:.1f} standard errors)"


# T=3, H=6: the episode ends exactly at the last step of the 2nd truncation.
# T=3, H=5: it ends inside the 2nd truncation; the 3rd continues episode 2.
@pytest.mark.parametrize("horizon", [6, 5])
def test_pes_mean_matches_smoothed_gradient(horizon):
    T, particles = 3, 40000
    pes = PES(truncation=T, particles=particles, horizon=horizon, std=SIGMA, stagger=False)
    per_call = estimates(pes, calls=3)
    for k, samples in enumerate(per_call):
        if horizon == 6 and k == 2:
            expected = smoothed_gradient(0, T, horizon)  # fresh episode: like the first truncation
        else:
            expected = smoothed_gradient(k, T, horizon)
        assert_matches(samples, expected, f"PES truncation {k}, horizon {horizon}")


def test_pes_fixes_reference_off_by_one():
    """The reference's bookkeeping would be measurably biased here; lofw's is not.

    With T=3, H=6, truncation 1 holds steps 3, 4, 5 and step 5 ends the
    episode. The reference weights step 5 by its own truncation's eps only,
    so it estimates d/dtheta_{0,1} E[L3 + L4]/3 + d/dtheta_1 E[L5]/3.
    """
    T, H = 3, 6
    unbiased = smoothed_gradient(1, T, H)

    def step5(thetas):
        return reference_losses(thetas, T, 6, H)[5] / 3

    def steps34(thetas):
        losses = reference_losses(thetas, T, 6, H)
        return (losses[3] + losses[4]) / 3

    reference_expectation = smoothed_gradient(1, T, H, objective=steps34) + smoothed_gradient(
        1, T, H, differentiate=[1], objective=step5
    )
    samples = estimates(PES(truncation=T, particles=40000, horizon=H, std=SIGMA, stagger=False), calls=2)[1]
    se = samples.std(ddof=1) / np.sqrt(samples.size)
    assert abs(reference_expectation - unbiased) > 8 * se, "the off-by-one would not be detectable"
    assert abs(samples.mean() - unbiased) < Z_TOL * se


def test_es_mean_matches_smoothed_gradient():
    T, H, particles = 3, 6, 40000
    es = ES(truncation=T, particles=particles, horizon=H, std=SIGMA, stagger=False)
    first, second = estimates(es, calls=2, seed=3)
    assert_matches(first, smoothed_gradient(0, T, H), "ES truncation 0")
    # From the kept positive state: only the current truncation's theta is differentiated.
    assert_matches(second, smoothed_gradient(1, T, H, differentiate=[1]), "ES truncation 1")


def test_pes_staggered_starts_and_accumulator_reset():
    T, H, P = 4, 10, 64
    pes = PES(truncation=T, particles=P, horizon=H, std=SIGMA)
    opt, task = ScalarLR(jnp.float32(THETA)), Quadratic()
    state = pes.init(opt, task, jax.random.PRNGKey(0))
    steps0 = np.asarray(state.positive.step)
    assert steps0.min() >= 0 and steps0.max() < H and len(set(steps0.tolist())) > 3
    out = pes.particle_gradients(opt, task, state, jax.random.PRNGKey(1))
    new_steps = np.asarray(out.state.positive.step)
    np.testing.assert_array_equal(new_steps, (steps0 + T) % H)
    np.testing.assert_array_equal(np.asarray(out.resets), (steps0 + T >= H).astype(np.float32))
    acc = np.asarray(out.state.accumulator.log_lr)
    ended_at_last = steps0 + T == H
    np.testing.assert_array_equal(acc[ended_at_last], 0.0)
    assert np.all(acc[~ended_at_last] != 0.0)


def full_episode_loss(opt, task, H):
    """Independent unroll: a Python loop over ``opt.update``."""
    params = task.init(jax.random.PRNGKey(0))
    state, losses = opt.init(params), []
    for t in range(H):
        batch = task.sample_batch(jax.random.PRNGKey(t))
        loss, grads = jax.value_and_grad(task.loss)(params, batch)
        losses.append(task.normalizer(loss))
        updates, state = opt.update(grads, state, params)
        params = jax.tree_util.tree_map(jnp.add, params, updates)
    return jnp.mean(jnp.stack(losses))


def test_tbptt_full_horizon_equals_jax_grad_scalar_lr():
    H = 7
    opt, task = ScalarLR(jnp.float32(THETA)), Quadratic()
    est = TBPTT(truncation=H, particles=2, horizon=H, stagger=False)
    state = est.init(opt, task, jax.random.PRNGKey(0))
    grad, out = est.estimate(opt, task, state, jax.random.PRNGKey(1))
    expected = jax.grad(lambda th: full_episode_loss(ScalarLR(th), task, H))(jnp.float32(THETA))
    np.testing.assert_allclose(grad.log_lr, expected, rtol=1e-5)
    # it matches the plain reference as well (no lofw code at all)
    np.testing.assert_allclose(grad.log_lr, jax.grad(lambda th: reference_window([th], 0, H, H))(THETA), rtol=1e-5)
    np.testing.assert_array_equal(out.resets, [1.0, 1.0])


class MatrixQuadratic(lofw.AbstractTask):
    """``1/2 ||W x - y||^2`` over a fixed random batch, for a real learned optimizer."""

    def init(self, key):
        return {"w": jnp.linspace(-1.0, 1.0, 12).reshape(4, 3), "b": jnp.zeros((3,))}

    def sample_batch(self, key, split="train"):
        return {"x": jax.random.normal(key, (5, 4)), "y": jax.random.normal(jax.random.fold_in(key, 1), (5, 3))}

    def loss(self, params, batch):
        return 0.5 * jnp.mean((batch["x"] @ params["w"] + params["b"] - batch["y"]) ** 2)


def test_tbptt_full_horizon_equals_jax_grad_learned_optimizer():
    """Through a composed learned optimizer (Adafactor features with learned
    decays, AdamAggMo nominal term with learned scale); data keys reproduced
    by hand. No network: differentiating the MLP head too costs ~30 s of
    compilation for no extra coverage of the estimator.
    """
    H = 5
    opt = lofw.build({"features": {"name": "adafactor"}, "nominal": {"name": "adam_aggmo"}}, key=jax.random.PRNGKey(3))
    task = MatrixQuadratic()
    est = TBPTT(truncation=H, particles=1, horizon=H, stagger=False)
    state = est.init(opt, task, jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(5)
    grad, _ = eqx.filter_jit(est.estimate)(opt, task, state, key)
    k_data, _ = jax.random.split(key)
    keys = jax.random.split(jax.random.split(k_data, 1)[0], H)
    theta, static = eqx.partition(opt, eqx.is_inexact_array)

    def loss(th):
        o = eqx.combine(th, static)
        params = task.init(None)

        def body(carry, k):
            params, s = carry
            value, g = jax.value_and_grad(task.loss)(params, task.sample_batch(k))
            u, s = o.update(g, s, params)
            return (jax.tree_util.tree_map(jnp.add, params, u), s), value

        _, values = jax.lax.scan(body, (params, o.init(params)), keys)
        return jnp.mean(values)

    expected = eqx.filter_jit(jax.grad(loss))(theta)
    for a, b in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-9)
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(expected)) > 0


def test_unroll_resets_after_horizon_steps():
    opt, task = ScalarLR(jnp.float32(THETA)), Quadratic()
    from lofw_plugins.estimator.truncated import fresh_inner_state

    s = fresh_inner_state(opt, task, jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), 7)
    s, losses, dones = unroll(opt, task, s, keys, s, horizon=3)
    np.testing.assert_array_equal(dones, [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_allclose(losses[:3], losses[3:6], rtol=1e-6)  # each episode restarts at P0
    assert int(s.step) == 1


def test_reset_after_the_scan_equals_reset_inside_it():
    """The fast path (horizon a multiple of the truncation) changes nothing."""
    from lofw_plugins.estimator.truncated import fresh_inner_states, initial_inner_states

    opt = lofw.build({"features": {"name": "adafactor"}, "nominal": {"name": "adam_aggmo"}}, key=jax.random.PRNGKey(0))
    task = MatrixQuadratic()
    starts = initial_inner_states(opt, task, jax.random.PRNGKey(1), particles=16, horizon=12, stagger=True, truncation=4)
    assert set(np.asarray(starts.step).tolist()) <= {0, 4, 8} and len(set(np.asarray(starts.step).tolist())) > 1
    fresh = fresh_inner_states(opt, task, jax.random.PRNGKey(2), 16)
    keys = jax.vmap(lambda k: jax.random.split(k, 4))(jax.random.split(jax.random.PRNGKey(3), 16))
    run = lambda end: jax.vmap(lambda s, k, f: unroll(opt, task, s, k, f, 12, end))(starts, keys, fresh)  # noqa: E731
    for a, b in zip(jax.tree_util.tree_leaves(run(True)), jax.tree_util.tree_leaves(run(False))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)  # same math; XLA may fuse differently
