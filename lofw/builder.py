"""Building optimizers: a recipe (registry name, mapping or model) to a learned optimizer,
and a run's ``recipe`` (a recipe or a registered whole optimizer) to the optimizer it meta-trains."""

from __future__ import annotations

from typing import Any

import jax

from lofw.construct import construct
from lofw.errors import ConfigError, choices
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.learned_optimizer import LearnedOptimizer
from lofw.recipes import RecipeConfig, build_from_config, parse_recipe, resolve_recipe
from lofw.registry import Registry, load_registry


def build(
    recipe: str | dict[str, Any] | RecipeConfig,
    key: jax.Array | None = None,
    registry: Registry | None = None,
) -> LearnedOptimizer:
    """Build a :class:`LearnedOptimizer` from a recipe.

    Args:
        recipe: a recipe name in the registry (``"star"``), a mapping such as
            ``{"extends": "star", "nominal": {"name": "aggmo"}}``, or a
            :class:`RecipeConfig`.
        key: PRNG key for the network's initial weights (default
            ``jax.random.PRNGKey(0)``).
        registry: where ``extends`` and names are looked up (default: the
            project's ``registry.yaml``).

    Raises:
        ConfigError: an unknown recipe, component or argument, an ill-typed
            argument, a missing slot; the message names the recipe, the slot
            and the valid choices.
    """
    if key is None:
        key = jax.random.PRNGKey(0)
    reg = registry if registry is not None else load_registry()
    if isinstance(recipe, str):
        if recipe not in reg.recipes:
            raise ConfigError(f"unknown recipe {recipe!r}; valid choices: {choices(reg.recipes)}")
        where, name, config = f"recipe {recipe!r}", recipe, reg.recipes[recipe]
    else:
        where, name = "recipe", None
        config = parse_recipe(recipe, where)
    return build_from_config(resolve_recipe(config, reg.recipes, where, name), key, where)


def build_optimizer(recipe: str | dict[str, Any], key: jax.Array, registry: Registry) -> AbstractOptimizer:
    """The optimizer a run meta-trains.

    ``recipe`` is a recipe name or inline recipe (:func:`build`), or
    ``{"optimizer": NAME, **arguments}`` for a registered component of kind
    ``optimizer`` (a whole optimizer such as the NQM's
    ``dense_preconditioner``), constructed with ``key``.
    """
    if isinstance(recipe, dict) and "optimizer" in recipe:
        kwargs = dict(recipe)
        name = kwargs.pop("optimizer")
        if not isinstance(name, str):
            raise ConfigError(f"recipe.optimizer: expected a registered optimizer name, got {name!r}")
        return construct("optimizer", name, kwargs, "recipe", key=key)
    return build(recipe, key=key, registry=registry)
