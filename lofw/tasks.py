"""Turning a task spec (a registry name or an inline dict) into a task.

A spec is either the name of an entry in the ``tasks:`` section of
``registry.yaml`` or a mapping of the same shape::

    {name: image_mlp, dataset: {name: digits}, hidden_sizes: [32, 32], batch_size: 128}

``name`` is a registered ``task`` component, ``dataset`` (when the task takes
one) is a registered ``dataset`` component given as a name or as
``{name: ..., <arguments>}``, ``task`` (when the task wraps another, as
``reparam`` does) is a task spec of its own, built first, and every other key
is a constructor argument of the task. Errors name the place (registry file and dotted key), the bad
value and the valid choices.
"""

from __future__ import annotations

import inspect
from typing import Any

from lofw.construct import construct
from lofw.errors import ConfigError, choices
from lofw.interfaces.task import AbstractTask
from lofw.plugin_manager import components
from lofw.registry import Registry, load_registry


def _takes(cls: type, argument: str) -> bool:
    return argument in inspect.signature(cls).parameters


def _component(kind: str, spec: Any, where: str) -> tuple[str, dict[str, Any]]:
    """Split ``name`` or ``{name: ..., **kwargs}`` into ``(name, kwargs)``."""
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a {kind} name or a mapping with `name`, got {spec!r}")
    if "name" not in spec:
        raise ConfigError(
            f"{where}: missing `name`; valid {kind} names: {choices(components(kind))}"
        )
    kwargs = dict(spec)
    name = kwargs.pop("name")
    if not isinstance(name, str):
        raise ConfigError(f"{where}.name: expected a {kind} name, got {name!r}")
    return name, kwargs


def build_dataset(spec: str | dict[str, Any], where: str = "dataset", *, check_only: bool = False) -> Any:
    """Build a registered dataset from ``name`` or ``{name: ..., **kwargs}``
    (``check_only``: validate only, load nothing, return None)."""
    name, kwargs = _component("dataset", spec, where)
    return construct("dataset", name, kwargs, where, check_only=check_only)


def build_task(
    spec: str | dict[str, Any] | AbstractTask,
    registry: Registry | None = None,
    where: str | None = None,
    *,
    check_only: bool = False,
) -> AbstractTask:
    """Build a task from a registry name or an inline spec.

    Args:
        spec: a name in the registry's ``tasks:`` section, a mapping
            ``{name: <task>, dataset: <dataset spec>, **task_arguments}``,
            or an already built task (returned unchanged).
        registry: where names are looked up (default: :func:`lofw.load_registry`).
        where: the place of ``spec`` in its config, for error messages.
        check_only: validate names and arguments only; load no data, build
            nothing, return None.

    Raises:
        ConfigError: unknown task or dataset name, unknown or ill-typed argument,
            a dataset given to a task that takes none, or one missing.
    """
    if isinstance(spec, AbstractTask):
        return spec
    if isinstance(spec, str):
        registry = registry if registry is not None else load_registry()
        if spec not in registry.tasks:
            raise ConfigError(
                f"{where or 'task'}: unknown task {spec!r}; valid choices: {choices(registry.tasks)}"
                + (f" (tasks: section of {registry.path})" if registry.path else "")
            )
        where = f"{registry.path}: tasks.{spec}" if registry.path else f"tasks.{spec}"
        spec = registry.tasks[spec]
    where = where or "task"
    name, kwargs = _component("task", spec, where)
    found = components("task")
    if name not in found:
        raise ConfigError(f"{where}: unknown task {name!r}; valid choices: {choices(found)}")
    context = {}
    if _takes(found[name], "task"):
        if "task" not in kwargs:
            raise ConfigError(f"{where}: task {name!r} wraps a task: give it `task` (a registry name or an inline task)")
        context["task"] = build_task(kwargs.pop("task"), registry, f"{where}.task", check_only=check_only)
    if _takes(found[name], "dataset"):
        if "dataset" not in kwargs:
            raise ConfigError(
                f"{where}: task {name!r} needs a `dataset`; valid choices: {choices(components('dataset'))}"
            )
        context["dataset"] = build_dataset(kwargs.pop("dataset"), f"{where}.dataset", check_only=check_only)
    elif "dataset" in kwargs:
        raise ConfigError(f"{where}.dataset: task {name!r} takes no dataset")
    return construct("task", name, kwargs, where, check_only=check_only, **context)
