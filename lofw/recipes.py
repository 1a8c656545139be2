"""Recipes: which component fills each slot of a :class:`LearnedOptimizer`.

A recipe maps slots to ``{name: ..., <constructor arguments>}``::

    {"extends": "star", "nominal": {"name": "aggmo"}}     # replace a slot
    {"extends": "star", "network": {"hidden_sizes": [8, 8]}}   # no name: edit its arguments
    {"extends": "star", "preconditioner": None}             # remove a slot
"""

from __future__ import annotations

from typing import Any

import jax
import pydantic
from pydantic import ConfigDict

from lofw.construct import construct
from lofw.errors import ConfigError, choices
from lofw.learned_optimizer import LearnedOptimizer
from lofw.plugin_manager import components
from lofw.slots import SLOTS, required_heads
from lofw.validation import format_validation_error


class ComponentConfig(pydantic.BaseModel):
    """``{name: ..., **constructor_arguments}``; ``name`` may be left out when
    editing the arguments of the component a recipe extends."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RecipeConfig(pydantic.BaseModel):
    """A learned-optimizer recipe (see module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extends: str | None = None
    features: ComponentConfig | None = None
    nominal: ComponentConfig | None = None
    network: ComponentConfig | None = None
    preconditioner: ComponentConfig | None = None
    nominal_magnitude: ComponentConfig | None = None
    blackbox_magnitude: ComponentConfig | None = None
    nominal_scale_init: pydantic.PositiveFloat = 1e-3
    blackbox_scale: pydantic.PositiveFloat = 1e-3


def _merge_slot(slot: str, base: ComponentConfig | None, override: ComponentConfig | None, where: str):
    if override is None or override.name is not None:
        return override
    if base is None:
        raise ConfigError(
            f"{where}.{slot}: no `name` given and the extended recipe has no {slot} to edit; "
            f"add `name:` (valid choices for {SLOTS[slot]}: {choices(component_names(SLOTS[slot]))})"
        )
    return ComponentConfig(name=base.name, **{**base.arguments, **override.arguments})


def component_names(kind: str) -> list[str]:
    """Names registered for ``kind`` (for error messages)."""
    return list(components(kind))


def resolve_recipe(
    recipe: RecipeConfig, recipes: dict[str, RecipeConfig], where: str, name: str | None = None
) -> RecipeConfig:
    """Follow ``extends`` and return a recipe with every slot spelled out.

    ``name`` is the recipe's own registry name, if it has one (for cycle errors).
    """
    return _resolve(recipe, recipes, where, (name,) if name else ())


def _resolve(recipe: RecipeConfig, recipes: dict[str, RecipeConfig], where: str, _chain: tuple[str, ...]) -> RecipeConfig:
    if recipe.extends is None:
        return recipe
    parent_name = recipe.extends
    if parent_name not in recipes:
        raise ConfigError(f"{where}.extends: unknown recipe {parent_name!r}; valid choices: {choices(recipes)}")
    if parent_name in _chain:
        raise ConfigError(f"{where}.extends: recipes extend each other in a cycle: {' -> '.join(_chain + (parent_name,))}")
    base = _resolve(recipes[parent_name], recipes, f"recipe {parent_name!r}", _chain + (parent_name,))
    update: dict[str, Any] = {"extends": None}
    for field in recipe.model_fields_set - {"extends"}:
        value = getattr(recipe, field)
        update[field] = _merge_slot(field, getattr(base, field), value, where) if field in SLOTS else value
    return base.model_copy(update=update)


def parse_recipe(recipe: Any, where: str) -> RecipeConfig:
    """Validate a dict (or pass a :class:`RecipeConfig` through)."""
    if isinstance(recipe, RecipeConfig):
        return recipe
    if not isinstance(recipe, dict):
        raise ConfigError(f"{where}: a recipe is a registry name, a mapping or a RecipeConfig, got {recipe!r}")
    try:
        return RecipeConfig.model_validate(recipe)
    except pydantic.ValidationError as e:
        raise ConfigError(format_validation_error(e, where, RecipeConfig)) from None


def build_from_config(recipe: RecipeConfig, key: jax.Array, where: str) -> LearnedOptimizer:
    """Construct the components of a resolved recipe."""
    if recipe.features is None:
        raise ConfigError(f"{where}: the `features` slot is required; valid choices: {choices(component_names('features'))}")
    built: dict[str, Any] = {}
    for slot in ("features", "nominal", "preconditioner", "nominal_magnitude", "blackbox_magnitude"):
        spec = getattr(recipe, slot)
        if spec is not None:
            if spec.name is None:
                raise ConfigError(f"{where}.{slot}: `name` is required; valid choices: {choices(component_names(SLOTS[slot]))}")
            built[slot] = construct(SLOTS[slot], spec.name, spec.arguments, f"{where}.{slot}")
    heads = required_heads(built.get("nominal"), built.get("nominal_magnitude"), built.get("blackbox_magnitude"))
    if "nominal" not in built and "blackbox_magnitude" not in built:
        raise ConfigError(
            f"{where}: needs a `nominal` term or a `blackbox_magnitude` (the blackbox term); "
            f"valid nominal choices: {choices(component_names('nominal'))}"
        )
    if heads and recipe.network is None:
        raise ConfigError(f"{where}.network: required (the components read heads {heads}); valid choices: {choices(component_names('network'))}")
    if recipe.network is not None:
        if not heads:
            raise ConfigError(f"{where}.network: no component reads a network head; set `network: null`")
        if recipe.network.name is None:
            raise ConfigError(f"{where}.network: `name` is required; valid choices: {choices(component_names('network'))}")
        built["network"] = construct(
            "network", recipe.network.name, recipe.network.arguments, f"{where}.network",
            n_inputs=built["features"].n_inputs, heads=heads, key=key,
        )
    try:
        return LearnedOptimizer(
            **built, nominal_scale_init=recipe.nominal_scale_init, blackbox_scale=recipe.blackbox_scale
        )
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
