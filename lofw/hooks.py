"""Hook specifications: the contract between lofw and its plugins.

A plugin is a module (or object) named by an entry point in the ``lofw``
group. It implements any of the hooks below, marked with
:data:`lofw.hookimpl`::

    import lofw

    @lofw.hookimpl
    def lofw_register_components(register):
        register("lion", Lion)        # kind inferred: Lion subclasses AbstractNominalTerm
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT = "lofw"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class LofwHookSpecs:
    """Namespace of lofw's hook specifications (empty bodies, per pluggy)."""

    @hookspec
    def lofw_register_components(self, register: Callable[[str, type], None]) -> None:
        """Register components by calling ``register(name, cls)`` once per component.

        The kind is inferred from the interface ``cls`` subclasses
        (``lofw.AbstractNominalTerm`` -> ``"nominal"``, ...). Registering a
        name twice within a kind, or a class that subclasses no interface, is
        an error naming the plugins involved.
        """

    @hookspec
    def lofw_log_metrics(self, run_dir: str, step: int, metrics: dict[str, Any]) -> None:
        """Receive the metrics of one step of a run (meta-training or evaluation).

        Called on the host after the compiled step has returned, so a logger
        (TensorBoard, Weights & Biases, ...) can be a plugin. ``run_dir`` is the
        run's folder.
        """

    @hookspec
    def lofw_register_pretrained(self, register: Callable[[str, str], None]) -> None:
        """Register pretrained optimizers by calling ``register(name, folder)``.

        ``folder`` holds ``params.eqx`` and ``card.json`` as written by
        ``lofw pretrained export`` (:mod:`lofw.pretrained_loader`); a package ships
        them as package data. Two plugins registering one name is an error.
        """

    @hookspec
    def lofw_register_torch_components(self, register: Callable[[str, str, type], None]) -> None:
        """Register PyTorch implementations by calling ``register(kind, name, cls)``.

        ``name`` is the registry name of the JAX component that ``cls``
        implements in PyTorch for :mod:`lofw.torch` (``register("nominal",
        "lion", TorchLion)``). This hook lives in entry-point group
        ``lofw.torch`` (not ``lofw``), whose modules must not import JAX:
        :mod:`lofw.torch` loads them without it. The contract of each kind is
        in :mod:`lofw.torch.components`.
        """
