"""Sources: everything lofw can evaluate, resolved to one :class:`Source`.

A SOURCE is what a user names on the command line or passes to
:func:`lofw.evaluate`: a meta-training run folder, a grid cell folder,
``pretrained:NAME``, a recipe name of the registry, or an optimizer object.
:func:`resolve_source` turns any of them into a :class:`Source` that carries
the optimizer, the task it was meta-trained on and its horizon.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import equinox as eqx
import jax

from lofw.builder import build
from lofw.errors import ConfigError, choices
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.meta.checkpoint import CONFIG, has_checkpoint, load_checkpoint, read_checkpoint_header
from lofw.meta.config import MetaTrainConfig, parse_meta_train_config
from lofw.meta.mixture import evaluation_task
from lofw.meta.training import setup_run
from lofw.pretrained_loader import PREFIX, pretrained, read_card, registered
from lofw.reading import read_json_file
from lofw.registry import Registry, load_registry
from lofw.runtime.disk import read_json

Kind = Literal["run", "cell", "pretrained", "recipe", "object"]


@dataclasses.dataclass(frozen=True)
class Source:
    """An optimizer to evaluate, and what is known of its meta-training.

    Attributes:
        label: short name shown in tables, plots and messages.
        optimizer: the optimizer.
        task: the task it was meta-trained on (a registry name or a spec), None when unknown.
        horizon: its meta-training horizon, None when untrained or unknown
            (then ``@horizon`` baselines are refused).
        ident: what identifies it for resuming an evaluation (default: the label).
        run_dir: its meta-training run folder, None when it has none.
        card: the model card of a pretrained optimizer, else None.
        kind: ``"run"``, ``"cell"``, ``"pretrained"``, ``"recipe"`` or ``"object"``.

    Every field after ``optimizer`` is keyword-only.
    """

    label: str
    optimizer: AbstractOptimizer
    _: dataclasses.KW_ONLY
    task: Any = None
    horizon: int | None = None
    ident: str | None = None
    run_dir: Path | None = None
    card: dict[str, Any] | None = None
    kind: Kind = "object"


def resolve_source(source: str | Path | AbstractOptimizer | Source, registry: Registry | None = None) -> Source:
    """The :class:`Source` of ``source``:

    - a :class:`Source`: itself;
    - an optimizer object: ``kind="object"``, no task, no horizon;
    - ``pretrained:NAME`` (or ``pretrained:FOLDER``): a pretrained optimizer
      (:func:`lofw.pretrained`); label ``NAME``, task and horizon from its card;
    - a meta-training run folder (``config.json`` + a checkpoint): its latest
      usable checkpoint; label = the folder name;
    - a grid cell folder (``OUT/cells/<id>``, whose ``run/`` is the run):
      label = the grid's variant label and seed (``star, seed=0``);
    - a recipe name of the registry: the untrained optimizer, meta-initialised
      with ``PRNGKey(0)``.

    Raises:
        ConfigError: anything else (the message lists what a source can be),
            a run with no checkpoint, a damaged pretrained optimizer.
    """
    if isinstance(source, Source):
        return source
    if isinstance(source, AbstractOptimizer):
        return Source(type(source).__name__, source)
    registry = registry if registry is not None else load_registry()
    text = str(source)
    if text.startswith(PREFIX):
        name = text[len(PREFIX):]
        card = read_card(name)
        return Source(name, pretrained(name, registry), task=evaluation_task(_task_spec(card, registry), registry),
                      horizon=int(card.get("horizon", 2000)), ident=f"{text}@{card.get('fingerprint')}",
                      card=card, kind="pretrained")
    path = Path(text)
    if path.is_dir():
        return _folder_source(path, registry)
    if text in registry.recipes:
        return Source(text, build(text, key=jax.random.PRNGKey(0), registry=registry), ident=f"recipe:{text}",
                      kind="recipe")
    raise ConfigError(f"unknown source {text!r}; {what_a_source_is(registry)}")


def _folder_source(path: Path, registry: Registry) -> Source:
    cell = path if (path / "run" / CONFIG).is_file() or (path / "cell.json").is_file() else None
    if path.name == "run" and (path.parent / "cell.json").is_file():
        cell = path.parent
    run = cell / "run" if cell is not None else path
    if cell is None and not (path / CONFIG).is_file():
        raise ConfigError(
            f"source {str(path)!r}: this folder is neither a meta-training run ({CONFIG} missing) nor a grid "
            f"cell (no run/{CONFIG}); {what_a_source_is(registry)}"
        )
    optimizer, config = load_run(run, registry)
    label = path.resolve().name
    if cell is not None:
        info = read_json(cell / "cell.json") or {}
        seed = info.get("resolved", {}).get("meta_train", {}).get("seed")
        label = f"{info.get('variant', cell.name)}, seed={seed}" if seed is not None else cell.name
    header = read_checkpoint_header(run) or {}
    return Source(label, optimizer, task=evaluation_task(config.task, registry), horizon=int(config.horizon),
                  ident=f"{run.resolve()}@{header.get('step')}", run_dir=run, kind="cell" if cell else "run")


def what_a_source_is(registry: Registry) -> str:
    """The list of what a SOURCE can be, for error messages."""
    return ("a SOURCE is a meta-training run folder (config.json + checkpoint.eqx), a grid cell folder "
            f"(OUT/cells/<id>), pretrained:NAME, or a recipe name of the registry: {choices(registry.recipes)}")


def _task_spec(card: dict[str, Any], registry: Registry) -> Any:
    """The registry name of the card's task when it still means the same task, else its spec."""
    name, spec = card.get("task_name"), card.get("task")
    if isinstance(name, str) and registry.tasks.get(name) == spec:
        return name
    return spec if spec is not None else name


def load_run(run_dir: Path, registry: Registry, config: MetaTrainConfig | None = None) -> tuple[AbstractOptimizer, MetaTrainConfig]:
    """The optimizer of a meta-training run folder's latest usable checkpoint, and its resolved config.

    ``config`` replaces the folder's ``config.json`` (an exporter passes the
    config a grid cell recorded, for a registry that has changed since).
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        raise ConfigError(f"{run_dir}: not a meta-training run folder ({CONFIG} missing); "
                          f"give a run folder or {PREFIX}NAME (valid names: {choices(registered())})")
    if not has_checkpoint(run_dir):
        raise ConfigError(f"{run_dir}: the run has no checkpoint yet; meta-train it first")
    if config is None:
        stored = read_json_file(run_dir / CONFIG)
        try:
            config = parse_meta_train_config(stored["config"], str(run_dir / CONFIG))
        except (KeyError, TypeError) as e:
            raise ConfigError(f"{run_dir / CONFIG}: unreadable run config: {e}") from None
    setup = setup_run(config, registry)
    state, _ = load_checkpoint(run_dir, setup.initial_state)
    return eqx.combine(state.theta, setup.static), setup.config
