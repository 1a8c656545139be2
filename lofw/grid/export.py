"""``lofw pretrained export``: a finished grid cell as a pretrained optimizer; any optimizer for PyTorch.

:func:`export` writes ``params.eqx`` and ``card.json`` (:mod:`lofw.pretrained_loader`)
from the cell's run, with the grid's evaluations of the cell as the card's
results. :func:`export_portable` (``--format torch``) writes the JAX-free
file of any source that :mod:`lofw.torch` reads.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from lofw.errors import ConfigError, choices
from lofw.evaluation.evaluate import evaluate
from lofw.evaluation.sources import load_run, resolve_source
from lofw.export_portable import write_portable
from lofw.grid.files import cell_dir, eval_dir, run_dir
from lofw.meta.checkpoint import STATUS
from lofw.meta.config import build_estimator, parse_meta_train_config
from lofw.meta.mixture import evaluation_task
from lofw.pretrained_loader import CARD, PARAMS, fingerprint
from lofw.registry import Registry, load_registry
from lofw.runtime.disk import atomic_write_bytes, read_json, write_json
from lofw.version import __version__


def default_folder() -> Path:
    """Where lofw's own pretrained optimizers live (``plugins/pretrained/`` of a checkout)."""
    import lofw_plugins.pretrained  # the built-in plugins import lofw: loaded only when exporting into them

    return lofw_plugins.pretrained.HERE


def _find_cell(grid_dir: Path, cell: str | None, variant: str | None, seed: int | None) -> dict[str, Any]:
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
    for c in grid["cells"]:
        resolved = (read_json(cell_dir(grid_dir, c["id"]) / "cell.json") or {}).get("resolved", {})
        summary = read_json(eval_dir(grid_dir, c["id"], steps) / "summary.json")
        if resolved.get("task") == task and isinstance(summary, dict) and summary.get("seeds") == seeds:
            if "adam" in summary.get("optimizers", {}):
                return summary["optimizers"]["adam"]
    return None


def _estimator_settings(config: Any, registry: Registry) -> dict[str, Any]:
    """The built estimator's scalar fields (its defaults filled in, e.g. ``std``)."""
    estimator = build_estimator(config, registry)
    values = {f.name: getattr(estimator, f.name, None) for f in dataclasses.fields(estimator)}
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
    task = evaluation_task(resolved["task"], registry)  # a mixture's cells are evaluated on its first member
    results: dict[str, Any] = {}
    here = evaluate(opt, task, steps=config.horizon, seeds=seeds, baselines=["adam"], seed=0, registry=registry)
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

    grid = found["grid"]
    recipe = resolved["recipe"]
    card = {
        "name": name,
        "lofw_version": __version__,
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
    if task != resolved["task"]:
        card["evaluation_task"] = task  # what the results are measured on: the mixture's first member
    target.mkdir(parents=True, exist_ok=True)
    scratch = target / f".{name}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    atomic_write_bytes(scratch / PARAMS, params)
    write_json(scratch / CARD, card, sort_keys=True)
    shutil.rmtree(target / name, ignore_errors=True)
    scratch.rename(target / name)
    return target / name


def export_portable(
    source: str | Path,
    out: str | Path,
    *,
    name: str | None = None,
    cell: str | None = None,
    variant: str | None = None,
    seed: int | None = None,
    force: bool = False,
    registry: Registry | None = None,
) -> Path:
    """Write the portable file (:mod:`lofw.portable`, read by :mod:`lofw.torch`) of any source.

    ``source`` is anything :func:`lofw.resolve_source` takes (a run folder, a
    grid cell folder, ``pretrained:NAME``, a recipe name), or a grid's output
    folder with ``cell`` or ``variant`` (and ``seed``). The card is the
    pretrained optimizer's own, or one naming the source, its task and horizon.

    Raises:
        ConfigError: an unknown source or cell, an existing ``out`` without
            ``force``, or an optimizer that is not a composed LearnedOptimizer.
    """
    registry = registry if registry is not None else load_registry()
    out = Path(out)
    if out.exists() and not force:
        raise ConfigError(f"{out}: exists; give --force to replace it")
    if cell is not None or variant is not None:
        found = _find_cell(Path(source), cell, variant, seed)
        source = cell_dir(Path(source), found["id"])
    resolved = resolve_source(str(source), registry)
    card = resolved.card or {
        "name": name or resolved.label,
        "source": str(source),
        "kind": resolved.kind,
        "task": resolved.task,
        "horizon": resolved.horizon,
    }
    card = {**card, "name": name or card.get("name") or resolved.label, "lofw_version": __version__,
            "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return write_portable(resolved.optimizer, out, card)
