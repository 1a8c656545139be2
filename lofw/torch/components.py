"""The PyTorch implementations of components, registered by plugins (JAX-free).

A plugin of entry-point group ``lofw.torch`` implements the hook
``lofw_register_torch_components(register)`` and calls ``register(kind,
name, cls)``: ``cls`` implements, in PyTorch, the JAX component registered
as ``name`` of ``kind``. lofw's own are in ``lofw_plugins.torch``. A class is
built with the JAX component's fields as keyword arguments (settings as
Python values, meta-parameters as float32 tensors; tuples become lists), as a
portable file (:mod:`lofw.portable`) holds them, and works on one parameter
tensor at a time, in float32. The contract of each kind, mirroring
``lofw/interfaces/``:

- ``features``: ``init(param) -> dict[str, Tensor]`` (the accumulators of one
  tensor) and ``update(grad, param, state, step, loss) -> (state, LeafStats,
  LeafFeatures)`` (:mod:`lofw.torch.stats`); ``loss`` is the value of
  ``step(closure)``'s closure, or None.
- ``nominal``: ``direction(stats) -> Tensor``.
- ``network``: ``heads`` (names) and ``__call__(features) -> {head: Tensor}``,
  each head of the parameter's shape.
- ``preconditioner``: ``apply(x, stats) -> Tensor``.
- ``magnitude``: ``uses_head`` and ``__call__(head or None) -> Tensor``.
"""

from __future__ import annotations

import dataclasses
import functools

import pluggy

from lofw.entry_points import BrokenPlugin, describe, load_entry_points
from lofw.errors import PluginError, choices
from lofw.hooks import PROJECT, LofwHookSpecs

#: The entry-point group of PyTorch implementations.
GROUP = "lofw.torch"
KINDS = ("features", "nominal", "network", "preconditioner", "magnitude")
HOOK = "lofw_register_torch_components"


@dataclasses.dataclass(frozen=True)
class TorchComponent:
    """One registered PyTorch implementation."""

    kind: str
    name: str
    cls: type
    plugin: str


@functools.cache
def _loaded() -> tuple[pluggy.PluginManager, tuple[BrokenPlugin, ...]]:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(LofwHookSpecs)
    _, broken = load_entry_points(pm, GROUP)
    return pm, tuple(broken)


def get_plugin_manager() -> pluggy.PluginManager:
    """The manager of group ``lofw.torch``'s plugins; tests and notebooks may ``register`` more
    plugin objects on it, then call :func:`refresh`."""
    return _loaded()[0]


@functools.cache
def _table() -> tuple[dict[str, dict[str, TorchComponent]], tuple[BrokenPlugin, ...]]:
    pm, broken = _loaded()
    table: dict[str, dict[str, TorchComponent]] = {kind: {} for kind in KINDS}
    for impl in pm.hook.lofw_register_torch_components.get_hookimpls():
        def register(kind: str, name: str, cls: type, _plugin: str = impl.plugin_name) -> None:
            if kind not in table:
                raise PluginError(f"plugin {_plugin!r} registered a torch {name!r} of unknown kind {kind!r}; "
                                  f"valid kinds: {choices(KINDS)}")
            previous = table[kind].get(name)
            if previous is not None:
                raise PluginError(f"torch {kind} {name!r} is registered twice: by plugin {previous.plugin!r} "
                                  f"and by plugin {_plugin!r}; uninstall one of them")
            table[kind][name] = TorchComponent(kind, name, cls, _plugin)

        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as e:  # noqa: BLE001 - located here, one message
            raise PluginError(f"plugin {impl.plugin_name!r} of group {GROUP!r}: its {HOOK} raised "
                              f"{describe(e)}") from None
    return table, broken


def torch_components(kind: str) -> dict[str, type]:
    """``{name: class}`` of the PyTorch implementations of ``kind``."""
    table, broken = _table()
    if broken:
        raise PluginError(broken[0].message())
    return {name: info.cls for name, info in table[kind].items()}


def lookup(kind: str, name: str, slot: str) -> type:
    """The PyTorch implementation of ``name``; one message naming the hook when there is none."""
    found = torch_components(kind)
    if name not in found:
        raise PluginError(
            f"the {slot} component {name!r} ({kind}) has no PyTorch implementation; a plugin adds one with the "
            f"hook {HOOK}(register) in entry-point group {GROUP!r}: register({kind!r}, {name!r}, cls). "
            f"{kind} components with one: {choices(found)}"
        )
    return found[name]


def refresh() -> None:
    """Rebuild the table (after registering a plugin object on :func:`get_plugin_manager`)."""
    _table.cache_clear()
