"""Loading and validating a grid before anything runs.

Every problem is reported as ONE :class:`lofw.ConfigError` naming the file,
the dotted path inside it, the bad value and the valid choices; the command
line prints it and exits with status 2. Nothing touches the disk here.

Checked: YAML syntax (safe loader), unknown keys and wrong types of the grid
file (:class:`GridConfig`), dotted paths of ``axes``/``zip``/``exclude`` that
do not exist in ``base`` (a :class:`lofw.meta.config.MetaTrainConfig`), empty
axes, zip groups of unequal lengths, exclude entries that match no axis
value, every expanded cell against ``MetaTrainConfig`` (types, horizon >=
truncation), the names of recipes, tasks, estimators and baselines, and
``eval.tasks`` (a suite or task names of the registry).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pydantic

from lofw.errors import ConfigError, choices, located
from lofw.evaluation.baselines import parse_baseline
from lofw.grid.config import EvalConfig, GridConfig
from lofw.grid.expand import LABEL_KEY, SEED_KEY, CellSpec, axis_groups, cell_id, expand_grid
from lofw.grid.ood import resolve_eval_tasks
from lofw.meta.config import LATER_FIELDS, MetaTrainConfig, build_estimator, resolve_config, without_later_defaults
from lofw.meta.mixture import is_mixture, parse_mixture
from lofw.plugin_manager import components
from lofw.reading import read_yaml
from lofw.recipes import component_names, parse_recipe, resolve_recipe
from lofw.registry import Registry, load_registry
from lofw.slots import SLOTS
from lofw.tasks import build_task
from lofw.validation import format_validation_error, key_path, model_at, model_in


@dataclasses.dataclass(frozen=True)
class Cell:
    """One validated cell of a grid.

    Attributes:
        id: stable id, the hash of ``resolved`` (:func:`lofw.grid.expand.cell_id`).
        index: position in the grid's expansion order.
        overrides: dotted path -> value of every axis and the seed.
        config: the meta-training run.
        eval: the evaluation, with ``horizons`` filled in.
        resolved: the fully resolved cell (config, evaluation, and the
            registry definitions of the recipe and task names it uses).
    """

    id: str
    index: int
    overrides: dict[str, Any]
    config: MetaTrainConfig
    eval: EvalConfig
    resolved: dict[str, Any]
    ood: tuple = ()   # lofw.grid.ood.OodTask per eval.tasks entry

    @property
    def variant(self) -> dict[str, Any]:
        return {k: v for k, v in self.overrides.items() if k != SEED_KEY}


@dataclasses.dataclass(frozen=True)
class LoadedGrid:
    """A grid file, validated and expanded."""

    grid: GridConfig
    source: str
    spec: str
    cells: list[Cell]


def read_grid_source(spec: str | Path, registry: Registry) -> tuple[Any, str]:
    """The raw grid mapping and a label of where it came from.

    ``spec`` is a path to a YAML file or a name in the registry's ``grids:``
    section (whose value is a file path, relative to the registry file, or
    an inline grid).
    """
    text = str(spec)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.is_file() or "/" in text:
        if not path.is_file():
            raise ConfigError(
                f"{text}: no such grid file; registry grid names: {choices(registry.grids)}"
            )
        return read_yaml(path), text
    if text not in registry.grids:
        raise ConfigError(
            f"unknown grid {text!r} (not a file, not in the grids: section of {registry.path}); "
            f"valid choices: {choices(registry.grids)}"
        )
    entry = registry.grids[text]
    if isinstance(entry, str):
        base_dir = registry.path.parent if registry.path else Path.cwd()
        file = (base_dir / entry)
        if not file.is_file():
            raise ConfigError(f"{registry.path}: grids.{text}: no such file {str(file)!r}")
        return read_yaml(file), str(file)
    if isinstance(entry, dict):
        return entry, f"{registry.path}: grids.{text}"
    raise ConfigError(
        f"{registry.path}: grids.{text}: expected a file path or an inline grid mapping, got {entry!r}"
    )


def load_grid(spec: str | Path, registry: Registry | None = None) -> LoadedGrid:
    """Read, validate and expand a grid (a file path or a registry grid name).

    Raises:
        ConfigError: the first problem found, as one message (see module docstring).
    """
    registry = registry if registry is not None else load_registry()
    data, source = read_grid_source(spec, registry)
    return validate_grid(data, source, registry, spec=str(spec))


def validate_grid(data: Any, source: str, registry: Registry, spec: str = "") -> LoadedGrid:
    """Validate a raw grid mapping read from ``source``; see :func:`load_grid`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a grid file is a mapping with keys {choices(GridConfig.model_fields)}")
    try:
        grid = GridConfig.model_validate(data)
    except pydantic.ValidationError as e:
        raise ConfigError(format_validation_error(e, source, GridConfig).splitlines()[0]) from None
    _check_base_keys(grid, source)
    _check_axes(grid, source)
    try:
        specs = expand_grid(grid)
    except ValueError as e:  # an axis sets a key inside a base value that is not a mapping
        raise ConfigError(f"{source}: base.{e}, and an axis sets a key inside it") from None
    if not specs:
        raise ConfigError(f"{source}: exclude: the exclude entries remove every cell of the grid")

    ood = resolve_eval_tasks(grid.eval.tasks, source, registry)
    cells = [dataclasses.replace(_validate_cell(grid, spec_, source, registry), ood=ood) for spec_ in specs]
    return LoadedGrid(grid=grid, source=source, spec=spec or source, cells=cells)


# --- paths into base ---------------------------------------------------------------------------

def _check_base_keys(grid: GridConfig, source: str) -> None:
    for key in grid.base:
        if key not in MetaTrainConfig.model_fields:
            raise ConfigError(
                f"{source}: {key_path(('base', key))}: unknown key; valid keys: {choices(MetaTrainConfig.model_fields)}"
            )


def _default_of(field: Any) -> Any:
    default = field.get_default(call_default_factory=True)
    return default.model_dump() if isinstance(default, pydantic.BaseModel) else default


def check_path(path: str, base: dict[str, Any], where: str) -> None:
    """Raise unless the dotted ``path`` names a key of a ``MetaTrainConfig`` built from ``base``.

    Sub-models (``outer``, ``estimator``) are checked against their fields;
    free-form mappings (an inline recipe or task, ``estimator.arguments``)
    may be entered only when ``base`` holds a mapping there.
    """
    model: type[pydantic.BaseModel] | None = MetaTrainConfig
    value: Any = base
    parts = path.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"{where}: {path!r} is not a dotted path (empty part)")
    for i, part in enumerate(parts):
        prefix = ".".join(parts[:i])
        place = f"base.{prefix}" if prefix else "base"
        if model is not None:
            if part not in model.model_fields:
                raise ConfigError(
                    f"{where}: {path!r} does not exist in {place}; valid keys: {choices(model.model_fields)}"
                )
            field = model.model_fields[part]
            inner = value.get(part) if isinstance(value, dict) and part in value else _default_of(field)
            model = model_in(field.annotation)
            value = inner
        else:
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{where}: {path!r} does not exist in base: {place} is {value!r}, not a mapping "
                    f"(write the mapping in base, or vary {prefix!r} itself)"
                )
            value = value.get(part)


def _check_axes(grid: GridConfig, source: str) -> None:
    seen: dict[str, str] = {}

    def claim(path: str, where: str) -> None:
        if path == SEED_KEY:
            raise ConfigError(f"{source}: {where}: vary the seed with the top-level `seeds:` list, not an axis")
        if path in seen:
            raise ConfigError(f"{source}: {where}: {path!r} is varied twice (also in {seen[path]})")
        check_path(path, grid.base, f"{source}: {where}")
        seen[path] = where

    for path, values in grid.axes.items():
        if not values:
            raise ConfigError(f"{source}: axes.{path}: empty axis; give at least one value")
        claim(path, f"axes.{path}")
    for g, group in enumerate(grid.zip):
        if not group:
            raise ConfigError(f"{source}: zip[{g}]: empty zip group; give dotted paths with lists of values")
        lengths = {p: len(v) for p, v in group.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{p} has {n}" for p, n in lengths.items())
            raise ConfigError(f"{source}: zip[{g}]: lists of unequal lengths ({listed}); zipped lists must be equally long")
        if LABEL_KEY in group:
            labels = group[LABEL_KEY]
            if len(group) < 2:
                raise ConfigError(f"{source}: zip[{g}].{LABEL_KEY}: names no values; zip it with dotted paths")
            if not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
                raise ConfigError(f"{source}: zip[{g}].{LABEL_KEY}: give distinct, non-empty strings, one per entry; got {labels!r}")
        for path, values in group.items():
            if path == LABEL_KEY:
                continue
            if not values:
                raise ConfigError(f"{source}: zip[{g}].{path}: empty list; give at least one value")
            claim(path, f"zip[{g}].{path}")
    if len(set(grid.seeds)) != len(grid.seeds):
        raise ConfigError(f"{source}: seeds: repeated seed in {grid.seeds}")
    values_of: dict[str, list[Any]] = {}
    for group in axis_groups(grid):
        for assignment in group:
            for path, value in assignment.items():
                if path != LABEL_KEY:
                    values_of.setdefault(path, []).append(value)
    for e, entry in enumerate(grid.exclude):
        if not entry:
            raise ConfigError(f"{source}: exclude[{e}]: empty entry (it would exclude every cell)")
        for path, value in entry.items():
            if path not in values_of:
                raise ConfigError(
                    f"{source}: exclude[{e}].{path}: not a varied key; valid keys: {choices(values_of)}"
                )
            if value not in values_of[path]:
                raise ConfigError(
                    f"{source}: exclude[{e}].{path}: {value!r} matches no value of the axis; "
                    f"valid choices: {', '.join(repr(v) for v in values_of[path])}"
                )

    for b, baseline in enumerate(grid.eval.baselines):
        parse_baseline(baseline, where=f"{source}: eval.baselines[{b}]")


# --- one cell ----------------------------------------------------------------------------------

def _origin(grid: GridConfig, spec: CellSpec, loc: tuple) -> str:
    """Where in the grid file the value at config location ``loc`` came from."""
    dotted = key_path(loc)
    for path, value in spec.overrides.items():
        if dotted == path or dotted.startswith(path + ".") or path.startswith(dotted + ".") and dotted:
            if path == SEED_KEY:
                return f"seeds[{grid.seeds.index(value)}]"
            if path in grid.axes:
                return f"axes.{path}[{grid.axes[path].index(value)}]"
            for g, group in enumerate(grid.zip):
                if path in group:
                    return f"zip[{g}].{path}[{group[path].index(value)}]"
    return f"base.{dotted}" if dotted else "base"


def _validate_cell(grid: GridConfig, spec: CellSpec, source: str, registry: Registry) -> Cell:
    try:
        config = MetaTrainConfig.model_validate(spec.config)
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        origin = _origin(grid, spec, loc)
        if not loc:  # a check across fields: name the varied key the message mentions
            mentioned = [p for p in spec.overrides if p != SEED_KEY and p in err["msg"]]
            origin = _origin(grid, spec, tuple(mentioned[0].split("."))) if mentioned else "base"
            raise ConfigError(f"{source}: {origin}: {err['msg']} (cell {spec.variant_label})") from None
        if err["type"] == "extra_forbidden":
            message = f"unknown key; valid keys: {choices(model_at(MetaTrainConfig, loc).model_fields)}"
        else:
            message = f"{err['msg']} (got {err.get('input')!r})"
        raise ConfigError(f"{source}: {origin}: {message}") from None
    resolved_recipe = _check_recipe(config, grid, spec, source, registry)
    resolved_task = _check_task(config, grid, spec, source, registry)
    _check_estimator(config, grid, spec, source, registry)
    evaluation = grid.eval
    if not evaluation.horizons:
        evaluation = evaluation.model_copy(update={"horizons": [10 * config.horizon]})
    resolved = {
        "meta_train": without_later_defaults(config.model_dump(mode="json")),
        "eval": evaluation.model_dump(mode="json", exclude={"tasks"}),  # not in the id: see EvalConfig
        "recipe": resolved_recipe,
        "task": resolved_task,
    }
    return Cell(
        id=cell_id(resolved), index=spec.index, overrides=spec.overrides, config=config,
        eval=evaluation, resolved=resolved,
    )


def _check_recipe(config, grid, spec, source, registry) -> dict[str, Any]:
    where = f"{source}: {_origin(grid, spec, ('recipe',))}"
    if isinstance(config.recipe, str):
        if config.recipe not in registry.recipes:
            raise ConfigError(f"{where}: unknown recipe {config.recipe!r}; valid choices: {choices(registry.recipes)}")
        recipe = registry.recipes[config.recipe]
    else:
        recipe = parse_recipe(config.recipe, where)
    resolved = resolve_recipe(recipe, registry.recipes, where)

    for slot, kind in SLOTS.items():
        component = getattr(resolved, slot)
        if component is not None and component.name is not None and component.name not in component_names(kind):
            raise ConfigError(f"{where}.{slot}: unknown {kind} {component.name!r}; valid choices: {choices(component_names(kind))}")
    return resolved.model_dump(mode="json", exclude_none=True)


def _check_task(config, grid, spec, source, registry) -> Any:
    where = f"{source}: {_origin(grid, spec, ('task',))}"
    task = config.task
    if is_mixture(task, registry):  # every member checked, as meta-train will build it
        try:
            mixture = parse_mixture(task, registry)
            for i, member in enumerate(mixture.members):
                build_task(member.spec, registry, where=f"mixture[{i}].task", check_only=True)
        except ConfigError as e:
            raise located(e, where) from None
        return registry.tasks[task] if isinstance(task, str) else task
    if isinstance(task, str):
        if task not in registry.tasks:
            raise ConfigError(f"{where}: unknown task {task!r}; valid choices: {choices(registry.tasks)}")
        task = registry.tasks[task]
    name = task.get("name") if isinstance(task, dict) else None
    found = components("task")
    if name not in found:
        raise ConfigError(f"{where}: unknown task component {name!r}; valid choices: {choices(found)}")
    try:  # its arguments, and the task a wrapper wraps
        build_task(task, registry, where="task", check_only=True)
    except ConfigError as e:
        raise located(e, where) from None
    return task


def _check_estimator(config, grid, spec, source, registry) -> None:
    name = config.estimator.name
    valid = set(registry.estimators) | set(components("estimator"))
    if name not in valid:
        where = f"{source}: {_origin(grid, spec, ('estimator', 'name'))}"
        raise ConfigError(f"{where}: unknown estimator {name!r}; valid choices: {choices(valid)}")
    if config.horizon_schedule != LATER_FIELDS["horizon_schedule"]:
        try:
            build_estimator(resolve_config(config, registry), registry)
        except ConfigError as e:
            raise located(e, f"{source}: {_origin(grid, spec, ('horizon_schedule',))}") from None
