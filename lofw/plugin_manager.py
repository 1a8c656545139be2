"""Loading plugins and the component table they register."""

from __future__ import annotations

import dataclasses
import functools
import os

import pluggy

from lofw.errors import PluginError, choices
from lofw.hooks import PROJECT, LofwHookSpecs
from lofw.interfaces.kinds import INTERFACES, kind_of

#: Set to a non-empty value to load only lofw's own built-in plugins
#: (hermetic runs, like pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``).
DISABLE_AUTOLOAD_ENV = "LOFW_DISABLE_PLUGIN_AUTOLOAD"
#: The entry point (in group ``lofw``) that registers the built-ins.
BUILTIN_ENTRY_POINT = "builtins"


@dataclasses.dataclass(frozen=True)
class ComponentInfo:
    """One registered component."""

    kind: str
    name: str
    cls: type
    plugin: str
    distribution: str | None


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    if os.environ.get(DISABLE_AUTOLOAD_ENV):
        pm.load_setuptools_entrypoints(PROJECT, name=BUILTIN_ENTRY_POINT)
    else:
        pm.load_setuptools_entrypoints(PROJECT)


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every ``lofw`` entry point loaded.

    Tests and notebooks may ``register`` extra plugin objects on it; call
    :func:`refresh` afterwards so the component table sees them.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(LofwHookSpecs)
    _load_entry_points(pm)
    return pm


def _distribution_of(pm: pluggy.PluginManager, plugin: object) -> str | None:
    for registered, dist in pm.list_plugin_distinfo():
        if registered is plugin:
            return dist.project_name
    return None


def _collect(pm: pluggy.PluginManager) -> dict[str, dict[str, ComponentInfo]]:
    table: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in INTERFACES}
    for impl in pm.hook.lofw_register_components.get_hookimpls():
        plugin_name = impl.plugin_name
        dist = _distribution_of(pm, impl.plugin)

        def register(name: str, cls: type, _plugin=plugin_name, _dist=dist) -> None:
            kind = kind_of(cls)
            if kind is None:
                raise PluginError(
                    f"plugin {_plugin!r} registered {name!r} = {cls!r}, which subclasses "
                    f"no lofw interface; subclass one of: "
                    f"{', '.join(i.__name__ for i in INTERFACES.values())}"
                )
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {_plugin!r} registered a component with name {name!r}")
            previous = table[kind].get(name)
            if previous is not None:
                raise PluginError(
                    f"{kind} component {name!r} is registered twice: by plugin "
                    f"{previous.plugin!r} ({previous.cls.__module__}.{previous.cls.__qualname__}) "
                    f"and by plugin {_plugin!r} ({cls.__module__}.{cls.__qualname__}); "
                    f"rename one of them"
                )
            table[kind][name] = ComponentInfo(kind, name, cls, _plugin, _dist)

        impl.function(register=register)
    return table


@functools.cache
def _table() -> dict[str, dict[str, ComponentInfo]]:
    return _collect(get_plugin_manager())


def refresh() -> None:
    """Rebuild the component table (after registering or removing plugins)."""
    _table.cache_clear()


def component_infos(kind: str | None = None) -> list[ComponentInfo]:
    """Every registered component (of one kind, if given), sorted."""
    table = _table()
    kinds = [kind] if kind is not None else list(table)
    for k in kinds:
        if k not in table:
            raise PluginError(f"unknown component kind {k!r}; valid kinds: {choices(table)}")
    return [table[k][n] for k in kinds for n in sorted(table[k])]


def components(kind: str) -> dict[str, type]:
    """``{name: class}`` of every registered component of ``kind``."""
    return {info.name: info.cls for info in component_infos(kind)}


def lookup(kind: str, name: str) -> type:
    """The class registered as ``name`` for ``kind``; a clear error if absent."""
    found = components(kind)
    if name not in found:
        raise KeyError(f"unknown {kind} {name!r}; valid choices: {choices(found)}")
    return found[name]
