"""Configuration of one meta-training run (pydantic, ``extra="forbid"``, frozen).

A run is fully described by a :class:`MetaTrainConfig`; every key has a
default, so ``MetaTrainConfig()`` is the paper's setting (STAR on the
Fashion-MNIST MLP, PES with truncation 50 and std 0.01, 2000-step horizon,
AdamW with lr 1e-4 and clipping at 1.0; paper Appendix B)::

    recipe: star                 # registry name or an inline recipe mapping
    task: fmnist_mlp             # registry name or an inline task mapping
    estimator: {name: pes}       # a preset of registry.yaml `estimators:` (truncation 50, std 0.01, particles 8)
    outer: {lr: 1.0e-4, weight_decay: 0.0, clip: 1.0, clip_mode: value}
    meta_steps: 5000
    horizon: 2000
    horizon_schedule: constant   # or {name: log_uniform, min: 100}: sampled episode lengths
    seed: 0
    checkpoint_every: 100

Models never reach the numerics: :func:`lofw.meta_train` turns a config into
an optimizer, a task, an estimator and an optax outer optimizer before
anything is traced.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any, Literal

import pydantic
from pydantic import ConfigDict, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from lofw.construct import construct
from lofw.errors import ConfigError, choices
from lofw.plugin_manager import components
from lofw.validation import format_validation_error

#: Fields of :class:`MetaTrainConfig` that do not change the trajectory of a
#: run: a run folder may be resumed with different values of these (for
#: example more ``meta_steps`` to continue training).
NON_TRAJECTORY_FIELDS = ("meta_steps", "checkpoint_every")

#: Fields added after runs were first fingerprinted, with the value every
#: older run had: left out of the fingerprint at that value, so that older
#: run folders (and grid cells) still resume.
LATER_FIELDS = {"horizon_schedule": "constant"}


def without_later_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a dumped :class:`MetaTrainConfig`) less the :data:`LATER_FIELDS`
    that hold the value every older run had: what run fingerprints and grid
    cell ids hash, so that adding a field never renames an older run."""
    return {k: v for k, v in data.items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}


class _Frozen(pydantic.BaseModel):
    # every float of a run config must be finite: no field gives infinity a meaning, and an
    # infinite learning rate, std or weight decay would meta-train on non-finite numbers
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class EstimatorConfig(_Frozen):
    """A meta-gradient estimator.

    Attributes:
        name: an entry of the registry's ``estimators:`` section (a preset
            such as ``pes``, ``es``, ``tbptt``) or a registered estimator
            component name. Keys set here override the preset's.
        truncation: inner steps unrolled per meta-step (paper: 50).
        std: Gaussian perturbation standard deviation sigma of PES / ES
            (paper: 0.01, the registry presets' value). None = the
            estimator's own default; setting it for an estimator that takes
            no ``std`` (``tbptt``) is an error.
        particles: independent inner runs per meta-step (PES/ES particles,
            each evaluated at +eps and -eps).
        arguments: further constructor arguments of the estimator component.
    """

    name: str = "pes"
    truncation: PositiveInt = 50
    std: PositiveFloat | None = None
    particles: PositiveInt = 8
    arguments: dict[str, Any] = {}


class OuterConfig(_Frozen):
    """The outer (meta) optimizer: gradient clipping, then AdamW.

    Attributes:
        lr: AdamW learning rate (paper: 1e-4).
        weight_decay: decoupled weight decay as a multiple of ``lr``: each
            step subtracts ``lr * weight_decay * theta`` (optax's ``adamw``
            convention), so ``weight_decay: 0.5`` shrinks theta by 0.5 * 1e-4
            per step, as in the paper (Appendix B, C.2 sweeps 0, 0.1, 0.5, 1.0).
        clip: clipping threshold applied to the meta-gradient before AdamW
            (paper: 1.0).
        clip_mode: ``"value"`` (element-wise, the default) or
            ``"global_norm"``. See :mod:`lofw.meta.outer` for why value clipping is
            the default.
        b1, b2, eps: AdamW's moment decays and epsilon.
    """

    lr: PositiveFloat = 1e-4
    weight_decay: NonNegativeFloat = 0.0
    clip: PositiveFloat = 1.0
    clip_mode: Literal["value", "global_norm"] = "value"
    b1: float = pydantic.Field(0.9, ge=0.0, lt=1.0)
    b2: float = pydantic.Field(0.999, ge=0.0, lt=1.0)
    eps: PositiveFloat = 1e-8


class MetaTrainConfig(_Frozen):
    """One meta-training run.

    Attributes:
        recipe: learned-optimizer recipe: a name in the registry's
            ``recipes:`` or an inline recipe mapping (see
            :class:`lofw.RecipeConfig`), or ``{optimizer: NAME, ...}`` for a
            registered component of kind ``optimizer`` (for example the NQM's
            ``dense_preconditioner``) with its constructor arguments.
        task: inner task: a name in the registry's ``tasks:`` or an inline
            mapping understood by ``lofw.tasks.build_task``.
        estimator: the meta-gradient estimator (:class:`EstimatorConfig`).
        outer: the outer optimizer (:class:`OuterConfig`).
        meta_steps: number of outer updates.
        horizon: inner training steps of one episode (paper: 2000); the
            meta-loss is the mean normalised training loss over it. Must be
            at least ``estimator.truncation``. With a sampled schedule, the
            longest episode.
        horizon_schedule: the length of each episode: a registered
            ``schedule`` component, as a name or ``{name: ..., **arguments}``:
            ``constant`` (every episode lasts ``horizon``, the paper's
            protocol) or ``{name: log_uniform, min: 100}`` (lengths drawn
            log-uniformly in ``[min, horizon]`` as each episode starts).
        seed: seeds the learned optimizer's initial weights, the particles'
            inner runs and the perturbations.
        checkpoint_every: save a checkpoint every this many meta-steps (and at
            the end).
    """

    recipe: str | dict[str, Any] = "star"
    task: str | dict[str, Any] = "fmnist_mlp"
    estimator: EstimatorConfig = EstimatorConfig()
    outer: OuterConfig = OuterConfig()
    meta_steps: NonNegativeInt = 5000
    horizon: PositiveInt = 2000
    horizon_schedule: str | dict[str, Any] = "constant"
    seed: int = 0
    checkpoint_every: PositiveInt = 100

    @pydantic.field_validator("horizon_schedule", mode="before")
    @classmethod
    def _one_spelling_of_constant(cls, value: Any) -> Any:
        # `{name: constant}` is the default `constant`: the same run, fingerprint and grid cell id
        return "constant" if value == {"name": "constant"} else value

    @pydantic.model_validator(mode="after")
    def _horizon_covers_truncation(self) -> "MetaTrainConfig":
        if self.horizon < self.estimator.truncation:
            raise ValueError(
                f"horizon ({self.horizon}) is shorter than estimator.truncation "
                f"({self.estimator.truncation}); use horizon >= truncation"
            )
        return self

    def trajectory_fingerprint(self) -> str:
        """A hash of every field that changes what the run computes.

        Two configs with the same fingerprint produce the same sequence of
        meta-parameters; a run folder is only resumed by a config with the
        fingerprint it was started with.
        """
        data = without_later_defaults(self.model_dump(mode="json", exclude=set(NON_TRAJECTORY_FIELDS)))
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_meta_train_config(data: Any, where: str = "meta-train config") -> MetaTrainConfig:
    """Validate a mapping (or pass a :class:`MetaTrainConfig` through).

    Raises:
        ConfigError: one line per problem with the dotted key, the bad value
            and the valid keys.
    """
    if isinstance(data, MetaTrainConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of run settings, got {data!r}")
    try:
        return MetaTrainConfig.model_validate(data)
    except pydantic.ValidationError as e:
        short = [err for err in e.errors() if err["type"] == "value_error" and not err["loc"]]
        if short and len(short) == len(e.errors()):
            raise ConfigError(f"{where}: {str(short[0]['ctx'].get('error', short[0]['msg']))}") from None
        raise ConfigError(format_validation_error(e, where, MetaTrainConfig)) from None


class EstimatorPreset(_Frozen):
    """An entry of the registry's ``estimators:`` section.

    Attributes:
        estimator: the registered estimator component (default: the entry's
            own name).
        truncation, std, particles, arguments: as in :class:`EstimatorConfig`.
    """

    estimator: str | None = None
    truncation: PositiveInt | None = None
    std: PositiveFloat | None = None
    particles: PositiveInt | None = None
    arguments: dict[str, Any] = {}


def _presets(registry: Any) -> tuple[dict[str, EstimatorPreset], str]:
    where = f"{registry.path}: estimators" if getattr(registry, "path", None) else "estimators"
    presets = {}
    for name, entry in (registry.estimators or {}).items():
        try:
            presets[name] = EstimatorPreset.model_validate(entry or {})
        except pydantic.ValidationError as e:
            raise ConfigError(format_validation_error(e, f"{where}.{name}", EstimatorPreset)) from None
    return presets, where


def resolve_config(config: MetaTrainConfig, registry: Any) -> MetaTrainConfig:
    """Fill ``estimator`` from its registry preset (explicitly set keys win).

    Idempotent: resolving a resolved config changes nothing, so a resolved
    config stored in a run folder has the same fingerprint when re-read.
    """
    presets, _ = _presets(registry)
    est = config.estimator
    preset = presets.get(est.name)
    if preset is None:
        return config
    values: dict[str, Any] = {"name": est.name}
    for key in ("truncation", "std", "particles"):
        if getattr(preset, key) is not None:
            values[key] = getattr(preset, key)
    values["arguments"] = dict(preset.arguments)
    for key in est.model_fields_set - {"name"}:
        values[key] = {**values["arguments"], **est.arguments} if key == "arguments" else getattr(est, key)
    data = config.model_dump()
    data["estimator"] = values
    return parse_meta_train_config(data)


def build_estimator(config: MetaTrainConfig, registry: Any, where: str = "estimator") -> Any:
    """The estimator component of a resolved config (horizon from the run).

    Raises:
        ConfigError: unknown estimator name (valid choices: presets and
            components), an argument the estimator does not take.
    """
    presets, preset_where = _presets(registry)
    est = config.estimator
    found = components("estimator")
    component = est.name
    if est.name in presets:
        component = presets[est.name].estimator or est.name
    if component not in found:
        names = sorted(set(found) | set(presets))
        raise ConfigError(
            f"{where}.name: unknown estimator {est.name!r}; valid choices: {choices(names)}"
            + (f" (presets: {preset_where}; components: {choices(found)})" if est.name in presets else "")
        )
    if "horizon" in est.arguments:
        raise ConfigError(f"{where}.arguments.horizon: set the run's `horizon` instead")
    kwargs: dict[str, Any] = {"truncation": est.truncation, "particles": est.particles, **est.arguments}
    if est.std is not None:
        kwargs["std"] = est.std
    if "schedule" in est.arguments:
        raise ConfigError(f"{where}.arguments.schedule: set the run's `horizon_schedule` instead")
    context: dict[str, Any] = {"horizon": config.horizon}
    schedule_name, schedule = build_schedule(config.horizon_schedule)
    if schedule_name != "constant":
        if "schedule" not in inspect.signature(found[component]).parameters:
            raise ConfigError(f"horizon_schedule: estimator {component!r} takes no horizon schedule "
                              f"(it runs every episode for `horizon` steps); use `horizon_schedule: constant`")
        try:
            schedule.check(config.horizon, est.truncation)
        except ValueError as e:
            raise ConfigError(f"horizon_schedule: {schedule_name}: {e}") from None
        context["schedule"] = schedule
    return construct("estimator", component, kwargs, where, **context)


def build_schedule(spec: str | dict[str, Any], where: str = "horizon_schedule") -> tuple[str, Any]:
    """``(name, schedule)`` of a ``horizon_schedule`` value (a name or ``{name: ..., **arguments}``)."""
    if isinstance(spec, str):
        name, kwargs = spec, {}
    else:
        kwargs = dict(spec)
        name = kwargs.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"{where}: missing `name`; valid schedules: {choices(components('schedule'))}")
    return name, construct("schedule", name, kwargs, where)
