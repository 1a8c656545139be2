"""Pretrained learned optimizers: meta-parameters and a model card, ready to use.

A pretrained optimizer is a folder of two files::

    params.eqx   the meta-parameters (equinox leaves of the optimizer's inexact arrays)
    card.json    the model card: the resolved recipe, the meta-training task,
                 estimator and outer settings, meta-steps and seeds, the lofw
                 version, the grid and cell that produced it, measured results
                 and the command that reproduces them, and a fingerprint

``fingerprint`` is the SHA-256 of the canonical JSON of the resolved recipe
and the bytes of ``params.eqx``; :func:`pretrained` refuses a folder whose
files do not match it. Folders are registered by plugins through the
``lofw_register_pretrained`` hook (lofw's own live in ``plugins/pretrained/``)
and written from a finished grid cell by :func:`export`
(``lofw pretrained export``)::

    opt = lofw.pretrained("star")                  # a LearnedOptimizer
    tx = opt.as_optax()                            # in any optax loop

``results`` in the card: for each horizon H (the meta-training horizon and
the grid's evaluation horizons), :func:`lofw.evaluate` on the meta-training
task with ``seeds`` task instances and base seed 0, for the learned optimizer
and Adam with a tuned learning rate: ``mean_loss`` (mean normalised training
loss over the H steps), ``final_loss_mean`` (training loss at the end),
``n_diverged``. ``lofw evaluate pretrained:NAME --steps H --seeds N
--baseline adam`` reproduces them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from lofw.base_optimizer import AbstractOptimizer
from lofw.errors import ConfigError, PluginError, choices
from lofw.registry import Registry, load_registry

PARAMS = "params.eqx"
CARD = "card.json"
#: Prefix of a pretrained optimizer where a run folder is expected (``lofw evaluate pretrained:star``).
PREFIX = "pretrained:"


@dataclasses.dataclass(frozen=True)
class PretrainedInfo:
    """One registered pretrained optimizer: its name, folder and plugin."""

    name: str
    folder: Path
    plugin: str


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def fingerprint(recipe: Any, params: bytes) -> str:
    """SHA-256 of the resolved recipe (canonical JSON) and the parameter bytes."""
    digest = hashlib.sha256(_canonical(recipe).encode())
    digest.update(b"\0")
    digest.update(params)
    return digest.hexdigest()


def registered() -> dict[str, PretrainedInfo]:
    """Every pretrained optimizer registered by a plugin, by name."""
    from lofw.plugin_manager import get_plugin_manager

    found: dict[str, PretrainedInfo] = {}
    for impl in get_plugin_manager().hook.lofw_register_pretrained.get_hookimpls():

        def register(name: str, folder: str, _plugin: str = impl.plugin_name) -> None:
            if name in found:
                raise PluginError(
                    f"pretrained optimizer {name!r} is registered twice: by plugin {found[name].plugin!r} "
                    f"({found[name].folder}) and by plugin {_plugin!r} ({folder}); rename one of them"
                )
            found[name] = PretrainedInfo(name, Path(folder), _plugin)

        impl.function(register=register)
    return dict(sorted(found.items()))


def _folder(name: str | Path) -> Path:
    found = registered()
    if isinstance(name, str) and name in found:
        return found[name].folder
    path = Path(name)
    if (path / CARD).is_file():
        return path
    raise ConfigError(
        f"unknown pretrained optimizer {str(name)!r}; valid choices: {choices(found)} "
        f"(or a folder holding {CARD} and {PARAMS})"
    )


def read_card(name: str | Path) -> dict[str, Any]:
    """The model card of a pretrained optimizer (a registered name or a folder)."""
    path = _folder(name) / CARD
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable model card ({e}); reinstall or re-export this optimizer") from None
    if not isinstance(card, dict) or not {"recipe", "fingerprint"} <= set(card):
        raise ConfigError(f"{path}: not a lofw model card (needs `recipe` and `fingerprint`); re-export it")
    return card


def pretrained(name: str | Path, registry: Registry | None = None) -> AbstractOptimizer:
    """The pretrained optimizer ``name`` (a registered name or a folder), ready to use.

    Raises:
        ConfigError: unknown name, unreadable card, or files that do not match
            the card's fingerprint (damaged or edited).
    """
    folder = _folder(name)
    card = read_card(folder)
    try:
        params = (folder / PARAMS).read_bytes()
    except OSError as e:
        raise ConfigError(f"{folder / PARAMS}: cannot read the meta-parameters ({e.strerror})") from None
    actual = fingerprint(card["recipe"], params)
    if actual != card["fingerprint"]:
        raise ConfigError(
            f"{folder}: fingerprint mismatch: {CARD} says {card['fingerprint'][:16]}..., the recipe and "
            f"{PARAMS} give {actual[:16]}...; the files are damaged or were changed separately. "
            "Reinstall lofw or re-export this optimizer with `lofw pretrained export`."
        )
    from lofw.meta_train import build_optimizer

    registry = registry if registry is not None else load_registry()
    opt = build_optimizer(card["recipe"], jax.random.PRNGKey(0), registry)
    theta, static = eqx.partition(opt, eqx.is_inexact_array)
    try:
        theta = eqx.tree_deserialise_leaves(io.BytesIO(params), theta)
    except Exception as e:  # noqa: BLE001 - any structure mismatch
        raise ConfigError(f"{folder / PARAMS}: does not fit the card's recipe: {e}") from None
    return eqx.combine(theta, static)


def _task_spec(card: dict[str, Any], registry: Registry) -> Any:
    """The registry name of the card's task when it still means the same task, else its spec."""
    name, spec = card.get("task_name"), card.get("task")
    if isinstance(name, str) and registry.tasks.get(name) == spec:
        return name
    return spec if spec is not None else name


def resolve_source(source: str | Path, registry: Registry | None = None) -> tuple[AbstractOptimizer, dict[str, Any]]:
    """A trained optimizer from text: ``pretrained:NAME`` (or ``pretrained:FOLDER``) or a run folder.

    Returns:
        ``(optimizer, info)``; ``info`` has ``kind`` (``"pretrained"`` or
        ``"run"``), ``task`` (the task spec it was meta-trained on: a registry
        name or a mapping), ``horizon`` (its meta-training horizon),
        ``run_dir`` (the run folder or None), ``card`` (the model card or
        None) and ``label`` (for messages).

    Raises:
        ConfigError: unknown pretrained name, a folder that is not a run, a
            run with no (usable) checkpoint.
    """
    registry = registry if registry is not None else load_registry()
    text = str(source)
    if text.startswith(PREFIX):
        name = text[len(PREFIX):]
        card = read_card(name)
        opt = pretrained(name, registry)
        return opt, {"kind": "pretrained", "task": _task_spec(card, registry), "horizon": int(card.get("horizon", 2000)),
                     "run_dir": None, "card": card, "label": text}
    run_dir = Path(source)
    opt, config = load_run(run_dir, registry)
    return opt, {"kind": "run", "task": config.task, "horizon": config.horizon, "run_dir": run_dir,
                 "card": None, "label": str(run_dir), "config": config}


def load_run(run_dir: Path, registry: Registry, config: Any = None) -> tuple[AbstractOptimizer, Any]:
    """The optimizer of a meta-training run folder's latest usable checkpoint, and its config."""
    from lofw.checkpoint import CONFIG, has_checkpoint, load_checkpoint
    from lofw.meta_config import parse_meta_train_config
    from lofw.meta_train import setup_run

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).exists():
        raise ConfigError(f"{run_dir}: not a meta-training run folder ({CONFIG} missing); "
                          f"give a run folder or {PREFIX}NAME (valid names: {choices(registered())})")
    if not has_checkpoint(run_dir):
        raise ConfigError(f"{run_dir}: the run has no checkpoint yet; meta-train it first")
    if config is None:
        try:
            config = parse_meta_train_config(json.loads((run_dir / CONFIG).read_text())["config"], str(run_dir / CONFIG))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{run_dir / CONFIG}: unreadable run config: {e}") from None
    setup = setup_run(config, registry)
    state, _ = load_checkpoint(run_dir, setup.initial_state)
    return eqx.combine(state.theta, setup.static), setup.config


# --- export ---------------------------------------------------------------------------------


def default_folder() -> Path:
    """Where lofw's own pretrained optimizers live (``plugins/pretrained/`` of a checkout)."""
    import lofw_plugins.pretrained

    return lofw_plugins.pretrained.HERE


def _find_cell(grid_dir: Path, cell: str | None, variant: str | None, seed: int | None) -> dict[str, Any]:
    from lofw.grid.files import read_json

    grid = read_json(grid_dir / "grid.json")
    if not isinstance(grid, dict) or not isinstance(grid.get("cells"), list):
        raise ConfigError(f"{grid_dir / 'grid.json'}: missing or damaged; give the output folder of a `lofw ablate` run")
    cells = grid["cells"]
    if cell is not None:
        matches = [c for c in cells if c["id"] == cell]
        valid = choices(c["id"] for c in cells)
    else:
        if variant is None:
            raise ConfigError("give --cell ID, or --variant LABEL (with --seed S when the grid has several seeds)")
        matches = [c for c in cells if c["variant"] == variant and (seed is None or c["seed"] == seed)]
        valid = choices({f"{c['variant']} (seed {c['seed']})" for c in cells})
    if len(matches) != 1:
        what = "no cell matches" if not matches else f"{len(matches)} cells match (add --seed)"
        raise ConfigError(f"{grid_dir}: {what}; valid choices: {valid}")
    return {"grid": grid, **matches[0]}


def _adam_entry(grid_dir: Path, grid: dict[str, Any], steps: int, task: Any, seeds: int) -> dict[str, Any] | None:
    """Adam's entry at ``steps`` from whichever cell of the grid trained the baselines for this task."""
    from lofw.grid.files import cell_dir, eval_dir, read_json

    for c in grid["cells"]:
        resolved = (read_json(cell_dir(grid_dir, c["id"]) / "cell.json") or {}).get("resolved", {})
        summary = read_json(eval_dir(grid_dir, c["id"], steps) / "summary.json")
        if resolved.get("task") == task and isinstance(summary, dict) and summary.get("seeds") == seeds:
            if "adam" in summary.get("optimizers", {}):
                return summary["optimizers"]["adam"]
    return None


def _estimator_settings(config: Any, registry: Registry) -> dict[str, Any]:
    """The built estimator's scalar fields (its defaults filled in, e.g. ``std``)."""
    import dataclasses as dc

    from lofw.meta_config import build_estimator

    estimator = build_estimator(config, registry)
    values = {f.name: getattr(estimator, f.name, None) for f in dc.fields(estimator)}
    return {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool))}


def _result(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("mean_loss", "final_loss_mean", "n_diverged", "lr")
    return {k: entry[k] for k in keys if k in entry}


def export(
    grid_dir: str | Path,
    name: str,
    *,
    cell: str | None = None,
    variant: str | None = None,
    seed: int | None = None,
    into: str | Path | None = None,
    force: bool = False,
    registry: Registry | None = None,
) -> Path:
    """Write ``params.eqx`` + ``card.json`` of a finished grid cell into ``into/name``.

    The cell's run must be finished. Results: the grid's evaluations of the
    cell (and of the cell that trained Adam) at the grid's evaluation
    horizons, plus one evaluation at the meta-training horizon run here.

    Raises:
        ConfigError: no such grid or cell, an unfinished run, an existing
            target without ``force``.
    """
    from lofw.checkpoint import STATUS
    from lofw.evaluate import evaluate
    from lofw.grid.files import cell_dir, eval_dir, read_json, run_dir
    from lofw.meta_config import parse_meta_train_config

    registry = registry if registry is not None else load_registry()
    grid_dir = Path(grid_dir)
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"--name: {name!r} is not a valid optimizer name (a folder name, no '/')")
    target = Path(into) if into is not None else default_folder()
    if (target / name).exists() and not force:
        raise ConfigError(f"{target / name}: exists; give --force to replace it")
    found = _find_cell(grid_dir, cell, variant, seed)
    cid = found["id"]
    cell_json = read_json(cell_dir(grid_dir, cid) / "cell.json")
    if not isinstance(cell_json, dict) or "resolved" not in cell_json:
        raise ConfigError(f"{cell_dir(grid_dir, cid) / 'cell.json'}: missing or damaged; rerun `lofw ablate` on the grid to rewrite it")
    resolved = cell_json["resolved"]
    run = run_dir(grid_dir, cid)
    status = read_json(run / STATUS) or {}
    if status.get("status") != "finished":
        raise ConfigError(f"{run}: the run is not finished (status {status.get('status', 'missing')!r}); finish the grid first")
    # the recipe and task as they were when the grid ran (the registry may have changed since)
    config = parse_meta_train_config({**resolved["meta_train"], "recipe": resolved["recipe"], "task": resolved["task"]},
                                     f"{cell_dir(grid_dir, cid) / 'cell.json'}")
    opt, config = load_run(run, registry, config)
    theta = eqx.filter(opt, eqx.is_inexact_array)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, theta)
    params = buffer.getvalue()

    evaluation = resolved.get("eval", {})
    seeds = int(evaluation.get("seeds", 5))
    results: dict[str, Any] = {}
    here = evaluate(opt, resolved["task"], steps=config.horizon, seeds=seeds, baselines=["adam"], seed=0, registry=registry)
    results[str(config.horizon)] = {k: _result(v) for k, v in here.summary["optimizers"].items()}
    for steps in evaluation.get("horizons", []):
        summary = read_json(eval_dir(grid_dir, cid, steps) / "summary.json")
        if not isinstance(summary, dict) or "learned" not in summary.get("optimizers", {}):
            raise ConfigError(f"{eval_dir(grid_dir, cid, steps)}: evaluation missing or damaged; rerun `lofw ablate` on the grid")
        entry = {"learned": _result(summary["optimizers"]["learned"])}
        adam = summary["optimizers"].get("adam") or _adam_entry(grid_dir, found["grid"], steps, resolved["task"], seeds)
        if adam is not None:
            entry["adam"] = _result(adam)
        results[str(steps)] = entry

    import lofw

    grid = found["grid"]
    recipe = resolved["recipe"]
    card = {
        "name": name,
        "lofw_version": lofw.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "recipe_name": resolved["meta_train"]["recipe"] if isinstance(resolved["meta_train"]["recipe"], str) else None,
        "recipe": recipe,
        "meta_parameters": int(sum(x.size for x in jax.tree_util.tree_leaves(theta))),
        "task_name": resolved["meta_train"]["task"] if isinstance(resolved["meta_train"]["task"], str) else None,
        "task": resolved["task"],
        "horizon": config.horizon,
        "estimator": {**config.estimator.model_dump(mode="json"), "settings": _estimator_settings(config, registry)},
        "outer": config.outer.model_dump(mode="json"),
        "meta_steps": config.meta_steps,
        "meta_seeds": [config.seed],
        "grid": {"name": grid.get("name"), "source": grid.get("source"), "spec": grid.get("spec"), "folder": str(grid_dir)},
        "cell": {"id": cid, "variant": found.get("variant"), "overrides": found.get("overrides")},
        "results": {"seeds": seeds, "seed": 0, "horizons": results},
        "reproduce": [f"lofw evaluate pretrained:{name} --steps {h} --seeds {seeds} --baseline adam" for h in results],
        "regenerate": f"lofw ablate {grid.get('spec') or grid.get('name')} --out {grid_dir} && "
                      f"lofw pretrained export {grid_dir} --cell {cid} --name {name} --force",
        "fingerprint": fingerprint(recipe, params),
    }
    from lofw.checkpoint import atomic_write_bytes, atomic_write_json

    target.mkdir(parents=True, exist_ok=True)
    scratch = target / f".{name}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    atomic_write_bytes(scratch / PARAMS, params)
    atomic_write_json(scratch / CARD, card)
    shutil.rmtree(target / name, ignore_errors=True)
    scratch.rename(target / name)
    return target / name
