"""The ``nqm`` task and the ``dense_preconditioner`` optimizer components."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lofw
import lofw.nqm as nqm
from lofw.construct import construct
from lofw.errors import ConfigError
from lofw.testing import check_optimizer, check_task
from lofw_plugins.optimizer.nqm_dense import DensePreconditioner
from lofw_plugins.task.nqm import NQMTask


def test_found_by_name():
    assert lofw.components("task")["nqm"] is NQMTask
    assert lofw.components("optimizer")["dense_preconditioner"] is DensePreconditioner


def test_task_default_constructor_is_appendix_b1():
    task = construct("task", "nqm", {}, "tasks.nqm")
    assert isinstance(task, NQMTask) and task.dim == 2
    np.testing.assert_allclose(task.problem.hessian, nqm.PAPER_HESSIAN, rtol=1e-6)
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    phi0 = jax.vmap(task.init)(keys)
    xi = jax.vmap(lambda k: task.sample_batch(k)["xi"])(keys)
    np.testing.assert_allclose(np.cov(np.asarray(phi0).T), 10 * np.eye(2), atol=0.4)  # phi_0 ~ N(0, 10 I)
    np.testing.assert_allclose(np.cov(np.asarray(xi).T), np.eye(2), atol=0.04)  # xi ~ N(0, I)


def test_task_arguments_from_config():
    task = construct("task", "nqm", {"hessian": [[2.0, 0.0], [0.0, 1.0]], "noise_cov": 0.0, "init_cov": 4.0}, "t")
    assert float(task.sample_batch(jax.random.PRNGKey(1))["xi"] @ jnp.ones(2)) == 0.0
    with pytest.raises(ConfigError, match="positive definite"):
        construct("task", "nqm", {"hessian": [[1.0, 2.0], [2.0, 1.0]]}, "tasks.nqm")
    with pytest.raises(ConfigError, match="no argument 'dim'"):
        construct("task", "nqm", {"dim": 3}, "tasks.nqm")


def test_task_loss_is_eq4():
    task = NQMTask()
    phi, xi = jnp.array([1.0, -2.0]), jnp.array([0.5, 0.25])
    r = np.array([0.5, -2.25])
    assert float(task.loss(phi, {"xi": xi})) == pytest.approx(0.5 * r @ nqm.PAPER_HESSIAN @ r, rel=1e-6)
    g = jax.grad(task.loss)(phi, {"xi": xi})
    np.testing.assert_allclose(g, nqm.PAPER_HESSIAN @ r, rtol=1e-6)


def test_optimizer_step_is_the_hand_written_update():
    """phi + update == phi - (alpha I + P) H (phi - xi) with the task's gradient (eq. 6)."""
    task = NQMTask()
    P = np.array([[0.1, 0.3], [-0.2, 0.2]])
    opt = construct("optimizer", "dense_preconditioner", {"alpha": 0.3, "P": P.tolist()}, "optimizer")
    phi, xi = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    grads = jax.grad(task.loss)(jnp.asarray(phi, jnp.float32), {"xi": jnp.asarray(xi, jnp.float32)})
    updates, state = opt.update(grads, opt.init(jnp.asarray(phi)), jnp.asarray(phi))
    expected = phi - (0.3 * np.eye(2) + P) @ nqm.PAPER_HESSIAN @ (phi - xi)
    np.testing.assert_allclose(phi + np.asarray(updates), expected, rtol=1e-5)
    assert int(state.step) == 1
    np.testing.assert_allclose(
        np.eye(2) + (-(0.3 * np.eye(2) + P) @ nqm.PAPER_HESSIAN), nqm.update_matrix(nqm.PAPER_HESSIAN, P, 0.3)
    )


def test_components_reproduce_the_study_rollout():
    """An episode through the task and optimizer components equals NoisyQuadratic's episode."""
    task, P, alpha = NQMTask(), jnp.array([[0.2, 0.1], [-0.1, 0.3]]), 0.3
    opt = DensePreconditioner(alpha=alpha, P=P)
    phi0, xi = task.problem.sample(jax.random.PRNGKey(0), 8)
    phi, state, losses = phi0, opt.init(phi0), []
    for t in range(8):
        grads = jax.grad(task.loss)(phi, {"xi": xi[t]})
        updates, state = opt.update(grads, state, phi)
        phi = phi + updates
        losses.append(task.loss(phi, {"xi": xi[t + 1]}))
    np.testing.assert_allclose(losses, task.problem.losses(P, alpha, phi0, xi), rtol=1e-5)


def test_meta_parameters_are_P_only():
    opt = DensePreconditioner(dim=3, alpha=0.5, init_std=0.1, key=jax.random.PRNGKey(0))
    assert [x.shape for x in jax.tree_util.tree_leaves(lofw.meta_parameters(opt))] == [(3, 3)]
    assert lofw.count_meta_parameters(opt) == 9
    grad = jax.grad(lambda o: jnp.sum(o.update(jnp.ones(3), o.init(jnp.ones(3)), jnp.ones(3))[0]))(opt)
    np.testing.assert_allclose(grad.P, -np.ones((3, 3)))


def test_contracts():
    check_task(NQMTask())
    opt = DensePreconditioner(dim=4, alpha=0.1, init_std=0.05, key=jax.random.PRNGKey(0))
    check_optimizer(opt, params=jnp.arange(4.0))


def test_optimizer_errors():
    with pytest.raises(ConfigError, match="P must be 2x2"):
        construct("optimizer", "dense_preconditioner", {"P": [[1.0, 2.0, 3.0]]}, "optimizer")
    with pytest.raises(ValueError, match="build it with dim=3"):
        DensePreconditioner(dim=2).init(jnp.ones(3))


def test_generic_es_estimator_matches_the_closed_form_gradient():
    """The components run through lofw's own ``es`` estimator, whose mean estimate matches the
    exact gradient of the expected meta-loss. The estimator scores the pre-update parameters
    (t = 0 .. T-1) and E[l_0] does not depend on P, so the target is
    ``(T-1)/T * grad expected_loss(T-1)``. Tolerance: 5 standard errors over repeated estimates."""
    T, alpha, reps = 20, 0.4, 8
    P = np.array([[0.1, -0.2], [0.05, 0.3]])
    estimator = lofw.components("estimator")["es"](truncation=T, particles=2048, horizon=T, std=0.01, stagger=False)
    task, opt = NQMTask(), DensePreconditioner(alpha=alpha, P=P)

    @jax.jit
    def estimate(key):
        state = estimator.init(opt, task, jax.random.fold_in(key, 1))
        grad, _ = estimator.estimate(opt, task, state, key)
        return grad.P

    g = np.stack([np.asarray(estimate(jax.random.PRNGKey(i)), np.float64).ravel() for i in range(reps)])
    exact = np.zeros(4)
    for i in range(4):
        e = np.zeros(4)
        e[i] = 1e-5
        e = e.reshape(2, 2)
        exact[i] = (T - 1) / T * (nqm.expected_loss(nqm.PAPER_HESSIAN, P + e, alpha, T - 1)
                                  - nqm.expected_loss(nqm.PAPER_HESSIAN, P - e, alpha, T - 1)) / 2e-5
    se = g.std(axis=0, ddof=1) / np.sqrt(reps)
    assert np.all(np.abs(g.mean(axis=0) - exact) < 5 * se + 1e-3), (g.mean(axis=0), exact, se)
