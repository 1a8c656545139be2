"""``generalize``: optimizers on a suite of tasks, side by side, against tuned baselines.

The paper's Figure 4 / Appendix C.3 experiment: an optimizer meta-trained on
one small task trains very different ones. For each task of a registry suite
(``suites:`` in ``registry.yaml``) every optimizer trains the SAME fresh task
instances (seed ``i`` is ``fold_in(PRNGKey(seed), i)``; one ``vmap``ed,
``scan``ned compiled call, :func:`lofw.evaluation.evaluate.train_curves`):

- each SOURCE (:func:`lofw.evaluation.sources.resolve_source`): a meta-training run
  folder, a grid cell folder, ``pretrained:NAME``, or a registry recipe name
  (untrained, meta-initialised with ``PRNGKey(0)``);
- the baselines: ``adam`` (learning rate from the half-decade grid
  :data:`lofw.evaluation.evaluate.LR_GRID`) and ``nadamw`` (random search over learning
  rate, betas, weight decay and warmup, :mod:`lofw.evaluation.nadamw_search`), both
  tuned on separate seeds for the whole run, or ``NAME@N`` for the first ``N``
  steps.

A task runs for ``steps`` inner steps: the command line's ``--steps``, else
the suite entry's ``steps``, else :data:`DEFAULT_STEPS`.

Files (every write atomic; a finished (task, optimizer) is skipped on rerun
when its settings match, see :func:`identity`)::

    OUT/generalize.json               the suite, the sources, the settings
    OUT/<task>/<optimizer>/curves.npz "loss": float32 [seeds, steps] raw training loss
    OUT/<task>/<optimizer>/summary.json
        final_loss [per seed] (mean of the last 1% of steps), final_loss_mean
        (over the seeds that did not diverge), mean_loss (mean task-normalised
        loss over steps and seeds), diverged [per seed], n_diverged, horizon,
        chance_loss, stability {worst_ratio, steps_above_chance, nonfinite}
        (lofw.evaluation.stability, per seed), and for a baseline its tuned settings
    OUT/<task>/<optimizer>/tuning.json a baseline's tuning (reused on resume)
    OUT/<task>/<optimizer>/parts/     seed batches of an unfinished run (--seed-batch)
    OUT/<task>/log.txt                a worker's output (--jobs)
    OUT/summary.csv, summary.md, generalize.png   (lofw.evaluation.generalize_report)

The stability horizon is a trained source's meta-training horizon (capped
at the run's steps); for an untrained recipe and for the baselines it is the
run's steps.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from lofw.errors import ConfigError, choices
from lofw.evaluation.baselines import LR_GRID, OptaxBaseline, parse_baseline
from lofw.evaluation.curves import (
    baseline_grid_curves,
    finite,
    normalised,
    seed_keys,
    summarise as summarise_curves,
    train_curves,
)
from lofw.evaluation.nadamw_search import nadamw, random_search
from lofw.evaluation.sources import Source, resolve_source, what_a_source_is
from lofw.evaluation.stability import stability
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.registry import Registry, SuiteEntry, load_registry, suite_entries
from lofw.runtime.disk import read_json, write_json, write_npz
from lofw.runtime.locks import FolderBusyError, folder_lock
from lofw.runtime.workers import Job, run_workers
from lofw.tasks import build_task

#: Inner steps of a task when neither the command line nor the suite gives them (the paper's horizon).
DEFAULT_STEPS = 2000
#: Seeds on which the baselines are tuned (separate from the evaluation seeds).
TUNE_SEEDS = 2
#: Manifest of a generalize output folder.
MANIFEST = "generalize.json"


def slug(label: str) -> str:
    """A folder name for an optimizer label (``star, seed=0`` -> ``star_seed=0``)."""
    return re.sub(r"[^A-Za-z0-9_.=@+-]+", "_", label).strip("_") or "optimizer"


def check_baselines(baselines: Sequence[str], where: str = "--baseline") -> list[tuple[str, int | None]]:
    """Parse ``adam``, ``nadamw``, ``NAME@N``; ``@horizon`` has no meaning across sources."""
    parsed = []
    for b in baselines:
        name, tune = parse_baseline(b, where=where)
        if tune == "horizon":
            raise ConfigError(f"{where}: {b!r}: @horizon is not available here (the sources have different "
                              f"horizons); write {name}@N with N the steps to tune for, or {name}")
        parsed.append((name, tune))
    if len(set(baselines)) != len(baselines):
        raise ConfigError(f"{where}: a baseline is given twice: {', '.join(baselines)}")
    return parsed


@dataclasses.dataclass(frozen=True)
class Item:
    """One optimizer on one task: where its files go and what it is."""

    name: str
    folder: Path
    source: Source | None = None
    baseline: str | None = None


@dataclasses.dataclass(frozen=True)
class Settings:
    """The evaluation settings shared by every task."""

    seeds: int = 5
    seed: int = 0
    nadamw_trials: int = 8
    tune_seeds: int = TUNE_SEEDS
    seed_batch: int | None = None


def task_steps(entry: SuiteEntry, steps: int | None) -> int:
    return int(steps) if steps is not None else int(entry.steps or DEFAULT_STEPS)


def identity(item: Item, task: str, steps: int, settings: Settings, task_spec: Any) -> dict[str, Any]:
    """What must match for a finished result on disk to be reused (``task_spec``: the
    task's registry definition, so that an edited task is run again)."""
    ident: dict[str, Any] = {
        "task": task, "task_spec": task_spec, "steps": steps,
        "seeds": settings.seeds, "seed": settings.seed, "optimizer": item.name,
    }
    if item.source is not None:
        ident["source"] = item.source.ident or item.source.label
    else:
        ident["baseline"] = item.baseline
        ident["tune_seeds"] = settings.tune_seeds
        if str(item.baseline).startswith("nadamw"):
            ident["trials"] = settings.nadamw_trials
    return json.loads(json.dumps(ident, default=str))


def is_done(item: Item, ident: dict[str, Any]) -> bool:
    summary = read_json(item.folder / "summary.json")
    return isinstance(summary, dict) and summary.get("identity") == ident and (item.folder / "curves.npz").is_file()


def _tune(item: Item, task_obj, steps: int, settings: Settings, ident: dict[str, Any]) -> tuple[AbstractOptimizer, dict]:
    """The tuned baseline and the record of its tuning (read back from tuning.json on resume)."""
    name, tune_for = parse_baseline(item.baseline)
    tune_steps = min(steps, tune_for or steps)
    record = read_json(item.folder / "tuning.json")
    if not (isinstance(record, dict) and record.get("identity") == ident):
        keys = seed_keys(settings.seed, settings.tune_seeds, offset=1_000_000)
        if name == "adam":
            curves = np.asarray(baseline_grid_curves("adam", jnp.asarray(LR_GRID, jnp.float32), task_obj, keys,
                                                     steps=tune_steps))
            scores = [float(np.mean(normalised(c, task_obj))) for c in curves]
            scores = [s if np.isfinite(s) else float("inf") for s in scores]
            best = int(np.argmin(scores))
            record = {"identity": ident, "tuned_for_steps": tune_steps, "lr": LR_GRID[best],
                      "lr_grid_losses": {repr(lr): (s if np.isfinite(s) else None) for lr, s in zip(LR_GRID, scores)}}
        else:
            result = random_search(task_obj, keys, steps=tune_steps, trials=settings.nadamw_trials,
                                   key=jax.random.PRNGKey(settings.seed + 2_000_000))
            record = {"identity": ident, "tuned_for_steps": tune_steps, **result.to_json()}
        write_json(item.folder / "tuning.json", record, sort_keys=True)
    if name == "adam":
        return OptaxBaseline("adam", jnp.float32(record["lr"])), record
    return nadamw(record["hyperparameters"], steps), record


def _curves_in_batches(opt, task_obj, steps: int, settings: Settings, folder: Path, ident: dict) -> np.ndarray:
    """``[seeds, steps]`` losses, ``seed_batch`` seeds per compiled call, each batch kept in parts/."""
    keys = seed_keys(settings.seed, settings.seeds)
    batch = settings.seed_batch or settings.seeds
    if batch >= settings.seeds:
        return np.asarray(train_curves(opt, task_obj, keys, steps=steps))
    parts = folder / "parts"
    if (read_json(parts / "identity.json") or {}) != ident:
        shutil.rmtree(parts, ignore_errors=True)
        write_json(parts / "identity.json", ident, sort_keys=True)
    out = []
    for start in range(0, settings.seeds, batch):
        stop = min(settings.seeds, start + batch)
        path = parts / f"seeds-{start}-{stop}.npz"
        if not path.is_file():
            write_npz(path, loss=np.asarray(train_curves(opt, task_obj, keys[start:stop], steps=steps)))
        with np.load(path) as npz:
            out.append(npz["loss"])
    return np.concatenate(out)


def summarise(curves: np.ndarray, task_obj, horizon: int) -> dict[str, Any]:
    """Per-seed final loss, diverged flags, mean normalised loss and stability numbers."""
    entry = summarise_curves(curves, task_obj)
    chance = task_obj.chance_loss
    st = stability(curves, min(max(1, horizon), curves.shape[1]), chance)
    entry["horizon"] = int(horizon)
    entry["chance_loss"] = chance
    entry["stability"] = {
        "worst_ratio": [finite(x) if np.isfinite(x) else "inf" for x in st.worst_ratio],
        "steps_above_chance": [None if np.isnan(x) else int(x) for x in st.steps_above_chance],
        "nonfinite": [int(x) for x in st.nonfinite],
    }
    return entry


def run_task(
    task: str, steps: int, items: Sequence[Item], settings: Settings, registry: Registry,
    on_done: Callable[[Item], None] = lambda item: None,
) -> dict[str, dict[str, Any]]:
    """Evaluate every unfinished item on ``task`` (built once, only if needed).

    Returns the new summaries by item name.
    """
    todo = [(it, identity(it, task, steps, settings, registry.tasks.get(task))) for it in items]
    todo = [(it, ident) for it, ident in todo if not is_done(it, ident)]
    if not todo:
        return {}
    task_obj = build_task(task, registry)
    written = {}
    for item, ident in todo:
        item.folder.mkdir(parents=True, exist_ok=True)
        try:
            with folder_lock(item.folder, "this (task, optimizer) run (another lofw generalize)"):
                if not is_done(item, ident):  # (another process may have finished it meanwhile)
                    written[item.name] = _run_item(item, ident, task, steps, task_obj, settings)
        except FolderBusyError as e:  # another process runs it; the report counts it as unfinished
            print(f"lofw generalize: skipping {task}/{item.name}: held by process {e.pid}", file=sys.stderr)
            continue
        on_done(item)
    return written


def _run_item(item: Item, ident: dict[str, Any], task: str, steps: int, task_obj, settings: Settings) -> dict[str, Any]:
    """Evaluate one (task, optimizer) and write its summary and curves; return the summary."""
    start = time.time()
    extra: dict[str, Any] = {}
    if item.source is not None:
        opt, horizon = item.source.optimizer, item.source.horizon or steps
    else:
        opt, record = _tune(item, task_obj, steps, settings, ident)
        horizon = steps
        extra = {k: v for k, v in record.items() if k not in ("identity", "trials")}
    curves = _curves_in_batches(opt, task_obj, steps, settings, item.folder, ident)
    summary = {"identity": ident, "task": task, "optimizer": item.name, "steps": steps, "seeds": settings.seeds,
               "kind": "source" if item.source is not None else "baseline",
               **summarise(curves, task_obj, horizon), **extra, "seconds": time.time() - start}
    write_npz(item.folder / "curves.npz", loss=curves)
    write_json(item.folder / "summary.json", json.loads(json.dumps(summary, default=str)), sort_keys=True)
    shutil.rmtree(item.folder / "parts", ignore_errors=True)
    return summary


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated ``generalize`` call: the tasks and, per task, the items."""

    suite: str
    out: Path
    sources: list[tuple[str, Source]]
    baselines: list[str]
    tasks: list[tuple[str, int]]
    settings: Settings

    def items(self, task: str) -> list[Item]:
        folder = self.out / task
        items = [Item(src.label, folder / slug(src.label), source=src) for _, src in self.sources]
        return items + [Item(b, folder / slug(b), baseline=b) for b in self.baselines]


def plan(
    sources: Sequence[str], suite: str, *, steps: int | None = None, seeds: int = 5, baselines: Sequence[str] = ("adam",),
    nadamw_trials: int = 8, out: str | Path | None = None, seed: int = 0, seed_batch: int | None = None,
    registry: Registry | None = None,
) -> Plan:
    """Validate everything (suite, numbers, baselines, sources) before anything is written.

    Raises:
        ConfigError: one message naming the argument and the valid choices.
    """
    registry = registry if registry is not None else load_registry()
    entries = suite_entries(suite, registry)
    for name, value, low in (("--steps", steps, 1), ("--seeds", seeds, 1), ("--nadamw-trials", nadamw_trials, 1),
                             ("--seed-batch", seed_batch, 1)):
        if value is not None and int(value) < low:
            raise ConfigError(f"{name}: must be at least {low}, got {value}")
    check_baselines(baselines)
    if not sources:
        raise ConfigError(f"give at least one SOURCE; {what_a_source_is(registry)}")
    resolved: list[tuple[str, Source]] = []
    taken = {slug(b) for b in baselines}
    for text in sources:
        src = resolve_source(text, registry)
        label, k = src.label, 2
        while slug(label) in taken:
            label, k = f"{src.label} #{k}", k + 1
        taken.add(slug(label))
        resolved.append((text, dataclasses.replace(src, label=label)))
    out = Path(out) if out is not None else Path("runs") / "generalize" / suite
    return Plan(
        suite=suite, out=out, sources=resolved, baselines=list(baselines),
        tasks=[(e.task, task_steps(e, steps)) for e in entries],
        settings=Settings(seeds=int(seeds), seed=int(seed), nadamw_trials=int(nadamw_trials),
                          seed_batch=int(seed_batch) if seed_batch else None),
    )


def write_manifest(p: Plan) -> None:
    p.out.mkdir(parents=True, exist_ok=True)
    write_json(p.out / MANIFEST, sort_keys=True, data={
        "suite": p.suite,
        "tasks": [{"task": t, "steps": s} for t, s in p.tasks],
        "optimizers": [{"name": src.label, "folder": slug(src.label), "kind": "source", "source": text,
                        "horizon": src.horizon} for text, src in p.sources]
                      + [{"name": b, "folder": slug(b), "kind": "baseline"} for b in p.baselines],
        "settings": dataclasses.asdict(p.settings),
    })


def run_plan(p: Plan, registry: Registry | None = None, *, jobs: int = 1, only_task: str | None = None,
             progress: bool = True, worker_args: Sequence[str] = ()) -> list[str]:
    """Run every unfinished (task, optimizer) of the plan, in this process or ``jobs`` workers
    (each ``lofw generalize WORKER_ARGS --task T``); return the failed workers (empty when all ran)."""
    registry = registry if registry is not None else load_registry()
    tasks = p.tasks
    if only_task is not None:
        tasks = [(t, s) for t, s in tasks if t == only_task]
        if not tasks:
            raise ConfigError(f"--task: {only_task!r} is not in suite {p.suite!r}; valid choices: "
                              f"{choices(t for t, _ in p.tasks)}")
    write_manifest(p)
    pending = [(t, s) for t, s in tasks
               if not all(is_done(it, identity(it, t, s, p.settings, registry.tasks.get(t))) for it in p.items(t))]
    units = sum(len(p.items(t)) for t, _ in pending)
    bar = tqdm(total=units, disable=not progress, file=sys.stderr, unit="run", dynamic_ncols=True,
               desc=f"generalize {p.suite}")
    try:
        if jobs <= 1 or len(pending) <= 1:
            for task, steps in pending:
                bar.set_postfix_str(task)
                run_task(task, steps, p.items(task), p.settings, registry, on_done=lambda it: bar.update(1))
            return []
        return _run_workers(p, pending, jobs, worker_args, bar)
    finally:
        bar.close()


def _run_workers(p: Plan, pending, jobs: int, worker_args: Sequence[str], bar) -> list[str]:
    """One ``lofw generalize ... --task T`` worker process per task, ``jobs`` at a time."""
    failed = []

    def on_done(job: Job, returncode: int, seconds: float) -> None:
        bar.update(len(p.items(job.name)))
        if returncode != 0:
            failed.append(f"{job.name} (exit {returncode}; see {job.log})")

    run_workers(jobs, [Job(task, ["generalize", *worker_args, "--task", task], p.out / task / "log.txt")
                       for task, _ in pending], on_done)
    return failed
