"""The catalogue ``registry.yaml``: named recipes, tasks, estimators and grids."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pydantic
import yaml
from pydantic import ConfigDict

from lofw.errors import ConfigError
from lofw.recipes import RecipeConfig
from lofw.validation import format_validation_error

#: Environment variable naming another registry file.
REGISTRY_ENV = "LOFW_REGISTRY"


class Registry(pydantic.BaseModel):
    """The validated contents of a registry file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipes: dict[str, RecipeConfig] = {}
    tasks: dict[str, dict[str, Any]] = {}
    estimators: dict[str, dict[str, Any]] = {}
    grids: dict[str, Any] = {}
    path: Path | None = None


def default_registry_path() -> Path:
    """``$LOFW_REGISTRY`` if set; else the checkout's top-level ``registry.yaml``
    (an editable install); else the copy shipped inside the package
    (``lofw/_data/registry.yaml``, with ``ablations/`` beside it, made by the
    wheel's build step in ``setup.py``)."""
    env = os.environ.get(REGISTRY_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    checkout = here.parent / "registry.yaml"
    if checkout.exists():
        return checkout
    return here / "_data" / "registry.yaml"


def read_yaml(path: Path) -> Any:
    """Read a YAML file with the safe loader; errors name the file and line."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{path}:{line}: YAML syntax error: {problem}") from None


def load_registry(path: str | Path | None = None) -> Registry:
    """Load and validate a registry file (default: :func:`default_registry_path`)."""
    path = Path(path) if path is not None else default_registry_path()
    if not path.exists():
        raise ConfigError(
            f"{path}: registry file not found; "
            + (f"${REGISTRY_ENV} names it: point ${REGISTRY_ENV} at an existing registry.yaml, or unset it"
               if os.environ.get(REGISTRY_ENV) else
               "this lofw installation is incomplete; reinstall it (pip install lofw, or pip install -e . from a checkout)")
        )
    return _load(path.resolve(), path.stat().st_mtime_ns if path.exists() else 0)


@functools.lru_cache(maxsize=8)
def _load(path: Path, _mtime: int) -> Registry:
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the registry must be a mapping with keys recipes, tasks, estimators, grids")
    try:
        return Registry.model_validate({**data, "path": path})
    except pydantic.ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path), Registry)) from None
