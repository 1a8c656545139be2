"""Turning pydantic validation errors into messages for people."""

from __future__ import annotations

import typing
from typing import Any

import pydantic

from lofw.errors import choices


def model_in(annotation: Any) -> Any:
    """The pydantic model inside ``X | None`` / ``dict[str, X]`` / ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def model_at(model: type[pydantic.BaseModel], loc: tuple) -> type[pydantic.BaseModel]:
    """The model that owns the last element of an error location."""
    current = model
    for part in loc[:-1]:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # a dict key or list index: stay on the value model
        inner = model_in(field.annotation)
        if inner is None:
            break
        current = inner
    return current


def key_path(loc: tuple) -> str:
    """An error location as a dotted path; a key that is empty, holds a dot, a space or a
    character that does not print (a line separator would split the message) is quoted."""
    def part(p: Any) -> str:
        text = str(p)
        plain = isinstance(p, int) or (text and text.isprintable() and not any(c.isspace() or c == "." for c in text))
        return text if plain else repr(p)
    return ".".join(part(p) for p in loc)


def format_validation_error(e: pydantic.ValidationError, where: str, model: type[pydantic.BaseModel]) -> str:
    """One line per problem: the dotted path, what is wrong, the valid keys."""
    lines = []
    for err in e.errors():
        path = key_path(err["loc"])
        place = f"{where}: {path}" if path else where
        if err["type"] == "extra_forbidden":
            owner = model_at(model, tuple(err["loc"]))
            lines.append(f"{place}: unknown key; valid keys: {choices(owner.model_fields)}")
        else:
            lines.append(f"{place}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)
