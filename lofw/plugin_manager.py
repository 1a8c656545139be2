"""Loading plugins and the component table they register.

A plugin is an entry point in group ``lofw`` (loaded by :mod:`lofw.entry_points`). One that fails to import, whose
hook implementations do not match lofw's hook specifications, or whose
registration raises is *broken*: it is left out, listed by ``lofw plugins``
with the reason, and any command that needs the component table stops with
one :class:`~lofw.errors.PluginError` naming the entry point, its
distribution and the error (exit status 2). ``LOFW_DISABLE_PLUGINS=a,b``
runs lofw without the entry points ``a`` and ``b`` (as pytest's ``-p no:NAME``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pluggy

from lofw.entry_points import BrokenPlugin, describe, load_entry_points
from lofw.errors import PluginError, choices
from lofw.hooks import PROJECT, LofwHookSpecs
from lofw.interfaces.kinds import INTERFACES, kind_of


@dataclasses.dataclass(frozen=True)
class ComponentInfo:
    """One registered component."""

    kind: str
    name: str
    cls: type
    plugin: str
    distribution: str | None


@functools.cache
def _loaded() -> tuple[pluggy.PluginManager, dict[int, str], tuple[BrokenPlugin, ...]]:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(LofwHookSpecs)
    dists, broken = load_entry_points(pm, PROJECT)
    return pm, dists, tuple(broken)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every working ``lofw`` entry point loaded.

    Tests and notebooks may ``register`` extra plugin objects on it; call
    :func:`refresh` afterwards so the component table sees them.
    """
    return _loaded()[0]


def _distribution_of(plugin: object) -> str | None:
    """The distribution that installed the entry point of ``plugin``, if known."""
    return _loaded()[1].get(id(plugin))


def call_registration(impl: Any, **kwargs: Any) -> BrokenPlugin | None:
    """Call one registration hook implementation; a failure other than a
    :class:`PluginError` (which already names the plugin) comes back as a
    :class:`BrokenPlugin`."""
    try:
        impl.function(**kwargs)
    except PluginError:
        raise
    except Exception as e:  # noqa: BLE001 - located and reported by the caller
        return BrokenPlugin(impl.plugin_name, _distribution_of(impl.plugin),
                            f"its {impl.function.__name__} raised {describe(e)}")
    return None


def _collect(pm: pluggy.PluginManager) -> tuple[dict[str, dict[str, ComponentInfo]], list[BrokenPlugin]]:
    table: dict[str, dict[str, ComponentInfo]] = {kind: {} for kind in INTERFACES}
    broken: list[BrokenPlugin] = []
    for impl in pm.hook.lofw_register_components.get_hookimpls():
        plugin_name = impl.plugin_name
        dist = _distribution_of(impl.plugin)

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

        failure = call_registration(impl, register=register)
        if failure is not None:
            broken.append(failure)
            for infos in table.values():  # nothing of a plugin that failed half-way
                for name in [n for n, info in infos.items() if info.plugin == plugin_name]:
                    del infos[name]
    return table, broken


@functools.cache
def _state() -> tuple[dict[str, dict[str, ComponentInfo]], tuple[BrokenPlugin, ...]]:
    table, broken = _collect(get_plugin_manager())
    return table, _loaded()[2] + tuple(broken)


def broken_plugins() -> tuple[BrokenPlugin, ...]:
    """The plugins left out because they failed to import, to validate or to register."""
    return _state()[1]


def _table() -> dict[str, dict[str, ComponentInfo]]:
    table, broken = _state()
    if broken:
        raise PluginError(broken[0].message() + (f" (and {len(broken) - 1} more broken plugins: lofw plugins lists them)"
                                                 if len(broken) > 1 else ""))
    return table


def refresh() -> None:
    """Rebuild the component table (after registering or removing plugins)."""
    _state.cache_clear()


def component_infos(kind: str | None = None, *, strict: bool = True) -> list[ComponentInfo]:
    """Every registered component (of one kind, if given), sorted.

    Raises:
        PluginError: a plugin is broken (:func:`broken_plugins`), unless
            ``strict`` is False, which lists the working plugins' components.
    """
    table = _table() if strict else _state()[0]
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
