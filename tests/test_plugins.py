"""The plugin contract: entry points, register(), kinds, duplicates, build by name."""

import os
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import lofw
from lofw.testing import check_component, example_params


class Lion(lofw.AbstractNominalTerm):
    """Sign of the slowest momentum (a third-party nominal term)."""

    def direction(self, stats):
        return jnp.sign(stats.momentum[..., -1])


class NotAComponent(eqx.Module):
    pass


class _Plugin:
    def __init__(self, components):
        self.components = components

    @lofw.hookimpl
    def lofw_register_components(self, register):
        for name, cls in self.components.items():
            register(name, cls)


@pytest.fixture
def registered():
    pm = lofw.get_plugin_manager()
    added = []

    def add(components, name):
        plugin = _Plugin(components)
        pm.register(plugin, name=name)
        added.append(plugin)
        lofw.refresh()

    yield add
    for plugin in added:
        pm.unregister(plugin)
    lofw.refresh()


def test_builtins_come_from_the_entry_point():
    infos = {(i.kind, i.name): i for i in lofw.component_infos()}
    for kind, name in [("features", "adafactor"), ("nominal", "adam_aggmo"), ("network", "mlp"),
                       ("preconditioner", "rms"), ("magnitude", "exp")]:
        assert infos[(kind, name)].plugin == "builtins"
        assert infos[(kind, name)].distribution == "lofw"
    assert set(lofw.components("nominal")) >= {"adam", "aggmo", "adam_aggmo", "sgd"}


def test_test_plugin_is_found_and_used_by_build(registered):
    registered({"lion": Lion}, "test-lion")
    assert lofw.components("nominal")["lion"] is Lion
    info = [i for i in lofw.component_infos("nominal") if i.name == "lion"][0]
    assert info.plugin == "test-lion"
    opt = lofw.build({"extends": "hyperparam", "nominal": {"name": "lion"}})
    assert isinstance(opt.nominal, Lion)
    check_component(opt.nominal)
    params = example_params()
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    assert all(bool(jnp.all(u < 0)) for u in jax.tree_util.tree_leaves(updates))


def test_duplicate_name_names_both_plugins(registered):
    registered({"adam": Lion}, "shadowing-plugin")
    with pytest.raises(lofw.PluginError) as err:
        lofw.components("nominal")
    message = str(err.value)
    assert "'builtins'" in message and "'shadowing-plugin'" in message and "'adam'" in message


def test_class_without_interface_is_rejected(registered):
    registered({"thing": NotAComponent}, "bad-plugin")
    with pytest.raises(lofw.PluginError, match="bad-plugin.*subclasses no lofw interface"):
        lofw.components("nominal")


def test_unknown_kind_lists_kinds():
    with pytest.raises(lofw.PluginError, match="valid kinds: .*'nominal'"):
        lofw.components("nominals")


def test_same_name_in_two_kinds_is_fine(registered):
    class Adam(lofw.AbstractPreconditioner):
        def apply(self, x, stats):
            return x

    registered({"adam": Adam}, "precond-adam")
    assert lofw.components("preconditioner")["adam"] is Adam


THIRD_PARTY = """
import jax.numpy as jnp, lofw
class Halved(lofw.AbstractPreconditioner):
    def apply(self, x, stats):
        return 0.5 * x
@lofw.hookimpl
def lofw_register_components(register):
    register("halved", Halved)
"""


def test_entry_point_plugin_and_hermetic_switch(tmp_path):
    """A real installed distribution: found by default, ignored with the switch."""
    site = tmp_path / "site"
    (site / "halved_plugin").mkdir(parents=True)
    (site / "halved_plugin" / "__init__.py").write_text(THIRD_PARTY)
    dist = site / "halved_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: halved-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lofw]\nhalved = halved_plugin\n")
    code = "import lofw, json; print(json.dumps(sorted(lofw.components('preconditioner'))))"
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("LOFW_DISABLE_PLUGIN_AUTOLOAD", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "halved" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "lofw.cli.main", "plugins", "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert '"distribution": "halved-plugin"' in out.stdout
    env["LOFW_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "halved" not in out.stdout and "rms" in out.stdout


def test_network_without_heads_field_is_abstract():
    class Headless(lofw.AbstractNetwork):
        def __call__(self, features):
            return {}

    with pytest.raises(TypeError):
        Headless()
