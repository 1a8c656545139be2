"""Constructing a registered component from a name and keyword arguments,
with errors that name the place, the argument and the valid choices."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pydantic

from lofw.errors import ConfigError, choices
from lofw.plugin_manager import components

#: Arguments the builder supplies itself; a config may not set them.
CONTEXT_ARGUMENTS = ("key", "n_inputs", "heads")


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(cls).parameters)
    return {n: p for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _annotations(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - unresolvable hints just skip type checks
        return {}


def _validate_value(annotation: Any, value: Any) -> Any:
    try:
        adapter = pydantic.TypeAdapter(annotation)
    except Exception:  # noqa: BLE001 - array types etc. are not validated here
        return value
    return adapter.validate_python(value, strict=False)


def construct(kind: str, name: str, kwargs: dict[str, Any], where: str, *, check_only: bool = False, **context: Any) -> Any:
    """Build component ``name`` of ``kind`` from config ``kwargs``.

    Args:
        kind: the component kind.
        name: its registered name.
        kwargs: constructor arguments from the config.
        where: the place in the config, for error messages.
        check_only: validate the name and the arguments, build nothing
            (returns None): a dataset's constructor loads its data.
        **context: arguments supplied by the builder (``key``, ``n_inputs``,
            ``heads``), passed only where the constructor accepts them.
    """
    found = components(kind)
    if name not in found:
        raise ConfigError(f"{where}: unknown {kind} {name!r}; valid choices: {choices(found)}")
    cls = found[name]
    params = _parameters(cls)
    settable = {n for n in params if n not in CONTEXT_ARGUMENTS}
    for arg in kwargs:
        if arg not in settable:
            raise ConfigError(
                f"{where}: {kind} {name!r} has no argument {arg!r}; valid arguments: {choices(settable)}"
            )
    hints = _annotations(cls)
    values = {}
    for arg, value in kwargs.items():
        try:
            values[arg] = _validate_value(hints.get(arg, Any), value)
        except pydantic.ValidationError as e:
            msg = e.errors()[0]["msg"]
            raise ConfigError(f"{where}.{arg}: bad value {value!r} for {kind} {name!r}: {msg}") from None
    missing = [n for n, p in params.items() if p.default is p.empty and n not in values and n not in context]
    if missing:
        raise ConfigError(f"{where}: {kind} {name!r} needs argument(s) {choices(missing)}")
    if check_only:
        return None
    values.update({k: v for k, v in context.items() if k in params})
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: cannot build {kind} {name!r}: {e}") from None
