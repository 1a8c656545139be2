"""Loading the entry points of a plugin group (JAX-free: :mod:`lofw.torch` uses it too).

A plugin whose module fails to import or whose hook implementations do not
match lofw's hook specifications is *broken*: it is left out and reported as
a :class:`BrokenPlugin` naming the entry point, its distribution and the
error. ``LOFW_DISABLE_PLUGINS=a,b`` leaves the entry points ``a`` and ``b``
out (as pytest's ``-p no:NAME``).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os

import pluggy

#: Set to a non-empty value to load only lofw's own built-in plugins
#: (hermetic runs, like pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``).
DISABLE_AUTOLOAD_ENV = "LOFW_DISABLE_PLUGIN_AUTOLOAD"
#: Comma-separated entry-point names not to load (in every group lofw loads).
DISABLE_PLUGINS_ENV = "LOFW_DISABLE_PLUGINS"
#: The entry point (in each of lofw's groups) that registers the built-ins.
BUILTIN_ENTRY_POINT = "builtins"


@dataclasses.dataclass(frozen=True)
class BrokenPlugin:
    """A plugin left out: its entry point, its distribution and what went wrong."""

    entry_point: str
    distribution: str | None
    error: str

    def message(self) -> str:
        where = f"plugin {self.entry_point!r}" + (f" (distribution {self.distribution!r})" if self.distribution else "")
        return (f"{where} is broken: {self.error}; fix or uninstall it, or run without it: "
                f"{DISABLE_PLUGINS_ENV}={self.entry_point}")


def describe(error: BaseException) -> str:
    """``Type: message`` on one line."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def disabled_plugins() -> set[str]:
    """The entry-point names that ``$LOFW_DISABLE_PLUGINS`` leaves out."""
    return {name.strip() for name in os.environ.get(DISABLE_PLUGINS_ENV, "").split(",") if name.strip()}


def load_entry_points(pm: pluggy.PluginManager, group: str) -> tuple[dict[int, str], list[BrokenPlugin]]:
    """Load and register every entry point of ``group``; ``({id(plugin): distribution}, broken)``."""
    only_builtins = bool(os.environ.get(DISABLE_AUTOLOAD_ENV))
    skip = disabled_plugins()
    dists: dict[int, str] = {}
    broken: list[BrokenPlugin] = []
    for ep in importlib.metadata.entry_points(group=group):
        if ep.name in skip or (only_builtins and ep.name != BUILTIN_ENTRY_POINT) or pm.has_plugin(ep.name):
            continue
        dist = ep.dist.name if getattr(ep, "dist", None) is not None else None
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as e:  # noqa: BLE001 - a broken plugin is reported, lofw goes on without it
            broken.append(BrokenPlugin(ep.name, dist, describe(e)))
            continue
        if dist is not None:
            dists[id(plugin)] = dist
    return dists, broken
