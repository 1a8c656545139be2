"""The catalogue ``registry.yaml``: named recipes, tasks, estimators, grids and suites.

A task suite (``suites:``) is a named list of tasks that ``lofw generalize``
and a grid's ``eval.tasks`` evaluate an optimizer on. Each entry is a task
name of the ``tasks:`` section, or ``{task: NAME, steps: N}`` to give that
task its own number of inner steps::

    suites:
      fig4_offline:
        - {task: digits_mlp_ln, steps: 2000}
        - python_lstm               # steps from the command line (default 2000)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pydantic
from pydantic import ConfigDict

from lofw.errors import ConfigError, choices
from lofw.reading import read_yaml
from lofw.recipes import RecipeConfig
from lofw.validation import format_validation_error

#: Environment variable naming another registry file.
REGISTRY_ENV = "LOFW_REGISTRY"


class SuiteEntry(pydantic.BaseModel):
    """One task of a suite: a name in ``tasks:`` and, optionally, its inner steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    steps: pydantic.PositiveInt | None = None


class Registry(pydantic.BaseModel):
    """The validated contents of a registry file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipes: dict[str, RecipeConfig] = {}
    tasks: dict[str, dict[str, Any]] = {}
    estimators: dict[str, dict[str, Any]] = {}
    grids: dict[str, Any] = {}
    suites: dict[str, list[SuiteEntry]] = {}
    path: Path | None = None

    @pydantic.field_validator("suites", mode="before")
    @classmethod
    def _names_to_entries(cls, suites: Any) -> Any:
        if not isinstance(suites, dict):
            return suites
        return {
            name: [{"task": e} if isinstance(e, str) else e for e in entries] if isinstance(entries, list) else entries
            for name, entries in suites.items()
        }


def check_suites(registry: Registry) -> None:
    """Every suite is non-empty and names tasks of the ``tasks:`` section.

    Raises:
        ConfigError: naming the file, the suite entry and the valid task names.
    """
    where = f"{registry.path}: " if registry.path else ""
    for name, entries in registry.suites.items():
        if not entries:
            raise ConfigError(f"{where}suites.{name}: empty suite; list at least one task of the tasks: section")
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            if entry.task not in registry.tasks:
                raise ConfigError(
                    f"{where}suites.{name}[{i}]: unknown task {entry.task!r}; valid choices: {choices(registry.tasks)}"
                )
            if entry.task in seen:
                raise ConfigError(f"{where}suites.{name}[{i}]: task {entry.task!r} is listed twice")
            seen.add(entry.task)


def suite_entries(name: str, registry: Registry, where: str = "--suite") -> list[SuiteEntry]:
    """The tasks of suite ``name``.

    Raises:
        ConfigError: an unknown suite, with the valid names.
    """
    if name not in registry.suites:
        raise ConfigError(
            f"{where}: unknown suite {name!r}; valid choices: {choices(registry.suites)}"
            + (f" (suites: section of {registry.path})" if registry.path else "")
        )
    return list(registry.suites[name])


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
        raise ConfigError(f"{path}: the registry must be a mapping with keys recipes, tasks, estimators, grids, suites")
    try:
        registry = Registry.model_validate({**data, "path": path})
    except pydantic.ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path), Registry)) from None
    check_suites(registry)
    return registry
