"""Every built-in component passes lofw.testing's contract suite."""

import jax
import jax.numpy as jnp
import pytest

import lofw
from lofw.testing import check_component, check_network, check_optimizer

SIMPLE_KINDS = ("nominal", "preconditioner", "magnitude", "features")


@pytest.mark.parametrize(
    "kind, name", [(k, n) for k in SIMPLE_KINDS for n in sorted(lofw.components(k))], ids=lambda x: str(x)
)
def test_builtin_component_contract(kind, name):
    check_component(lofw.components(kind)[name]())


@pytest.mark.parametrize("name", sorted(lofw.components("network")))
def test_builtin_network_contract(name):
    net = lofw.components("network")[name](n_inputs=9, heads=("direction", "x"), key=jax.random.PRNGKey(0))
    check_network(net, n_inputs=9, n_globals=3)


@pytest.mark.parametrize("recipe", sorted(lofw.load_registry().recipes))
def test_recipe_optimizer_contract(recipe):
    check_optimizer(lofw.build(recipe))


def test_contract_catches_a_broken_component():
    class WrongShape(lofw.AbstractNominalTerm):
        def direction(self, stats):
            return jnp.concatenate([stats.grad.ravel(), jnp.zeros(1)])

    with pytest.raises(AssertionError, match="does not broadcast"):
        check_component(WrongShape())

    class Negative(lofw.AbstractMagnitude):
        def __call__(self, head):
            return -head**2

    with pytest.raises(AssertionError, match="positive"):
        check_component(Negative())

    class Retraces(lofw.AbstractNominalTerm):
        calls: list

        def direction(self, stats):
            self.calls.append(None)
            return stats.grad * len(self.calls)  # a Python-side value baked into each trace

    with pytest.raises(AssertionError):
        check_component(Retraces(calls=[]))
