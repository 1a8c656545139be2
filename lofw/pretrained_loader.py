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
and written from a finished grid cell by :func:`lofw.grid.export.export`
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
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from lofw.builder import build_optimizer
from lofw.errors import ConfigError, PluginError, choices
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.plugin_manager import call_registration, get_plugin_manager
from lofw.portable import canonical
from lofw.reading import read_json_file
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


def fingerprint(recipe: Any, params: bytes) -> str:
    """SHA-256 of the resolved recipe (canonical JSON) and the parameter bytes."""
    digest = hashlib.sha256(canonical(recipe).encode())
    digest.update(b"\0")
    digest.update(params)
    return digest.hexdigest()


def registered() -> dict[str, PretrainedInfo]:
    """Every pretrained optimizer registered by a plugin, by name."""
    found: dict[str, PretrainedInfo] = {}
    for impl in get_plugin_manager().hook.lofw_register_pretrained.get_hookimpls():

        def register(name: str, folder: str, _plugin: str = impl.plugin_name) -> None:
            if name in found:
                raise PluginError(
                    f"pretrained optimizer {name!r} is registered twice: by plugin {found[name].plugin!r} "
                    f"({found[name].folder}) and by plugin {_plugin!r} ({folder}); rename one of them"
                )
            found[name] = PretrainedInfo(name, Path(folder), _plugin)

        failure = call_registration(impl, register=register)
        if failure is not None:
            raise PluginError(failure.message())
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
        card = read_json_file(path)
    except ConfigError as e:
        raise ConfigError(f"{e}; reinstall or re-export this optimizer") from None
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
    registry = registry if registry is not None else load_registry()
    opt = build_optimizer(card["recipe"], jax.random.PRNGKey(0), registry)
    theta, static = eqx.partition(opt, eqx.is_inexact_array)
    try:
        theta = eqx.tree_deserialise_leaves(io.BytesIO(params), theta)
    except Exception as e:  # noqa: BLE001 - any structure mismatch
        raise ConfigError(f"{folder / PARAMS}: does not fit the card's recipe: {e}") from None
    return eqx.combine(theta, static)
