"""Metrics loggers: plugins of the ``lofw_log_metrics`` hook, off unless asked for.

A logger is a module (or object) implementing :func:`lofw.hooks.LofwHookSpecs.lofw_log_metrics`,
named by an entry point in the group ``lofw.loggers``. Unlike component
plugins it is not loaded automatically: ``--log NAME`` (``meta-train``,
``ablate``, ``evaluate``) or :func:`use_loggers` registers it for one run.
A logger may define ``close()``, called when the run ends (flush files).

The built-in ``tensorboard`` logger (``lofw_plugins.loggers.tensorboard``,
``pip install 'lofw[tensorboard]'``) is registered this way::

    [project.entry-points."lofw.loggers"]
    tensorboard = "lofw_plugins.loggers.tensorboard"

A Weights & Biases logger in a package of its own is the same few lines::

    # my_lofw_wandb.py;  pyproject: [project.entry-points."lofw.loggers"] wandb = "my_lofw_wandb"
    import lofw, wandb
    _runs = {}

    @lofw.hookimpl
    def lofw_log_metrics(run_dir, step, metrics):
        if run_dir not in _runs:
            _runs[run_dir] = wandb.init(project="lofw", name=run_dir, reinit=True)
        _runs[run_dir].log({k: v for k, v in metrics.items() if k != "step"}, step=step)

    def close():
        for run in _runs.values():
            run.finish()

and then ``lofw meta-train ... --log wandb``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from lofw.errors import ConfigError, choices
from lofw.plugin_manager import get_plugin_manager

#: Entry-point group of metrics loggers.
GROUP = "lofw.loggers"


def available_loggers() -> dict[str, importlib.metadata.EntryPoint]:
    """``{name: entry point}`` of every installed logger."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}


def load_loggers(names: Sequence[str]) -> list[tuple[str, Any]]:
    """Import the loggers ``names``; a clear error for an unknown or uninstallable one.

    Raises:
        ConfigError: unknown name (with the valid choices), or its module
            fails to import (for example TensorBoard not installed).
    """
    found = available_loggers()
    loaded = []
    for name in dict.fromkeys(names):
        if name not in found:
            raise ConfigError(f"--log: unknown logger {name!r}; valid choices: {choices(found)}")
        try:
            loaded.append((name, found[name].load()))
        except ImportError as e:
            raise ConfigError(
                f"--log {name}: the logger cannot be loaded ({e}); install its dependencies, "
                f"for the built-in one: pip install 'lofw[{name}]'"
            ) from None
    return loaded


@contextlib.contextmanager
def use_loggers(names: Sequence[str]) -> Iterator[None]:
    """Register the loggers ``names`` with the plugin manager for the block."""
    pm = get_plugin_manager()
    loaded = load_loggers(names)
    registered = []
    try:
        for name, plugin in loaded:
            if not pm.is_registered(plugin):
                pm.register(plugin, name=f"{GROUP}:{name}")
                registered.append(plugin)
        yield
    finally:
        for plugin in registered:
            close = getattr(plugin, "close", None)
            if callable(close):
                close()
            pm.unregister(plugin)


def log_curves(out_dir: str | Path, curves: dict[str, np.ndarray] | None) -> None:
    """Send evaluation curves through ``lofw_log_metrics``: one call per
    inner step with ``eval/<optimizer>/loss`` (mean over seeds, NaN where
    every seed diverged). Nothing happens when no logger is registered."""
    hook = get_plugin_manager().hook.lofw_log_metrics
    if not curves or not hook.get_hookimpls():
        return
    means = {}
    for name, c in curves.items():
        c = np.where(np.isfinite(c), c, np.nan)
        with np.errstate(all="ignore"):
            means[name] = np.nanmean(c, axis=0) if np.isfinite(c).any() else np.full(c.shape[1], np.nan)
    steps = max(len(m) for m in means.values())
    for t in range(steps):
        metrics = {f"eval/{name}/loss": float(m[t]) for name, m in means.items() if t < len(m)}
        hook(run_dir=str(out_dir), step=t + 1, metrics={"step": t + 1, **metrics})
