"""Meta-training on a mixture of tasks: several tasks or families, one meta-gradient.

A run's ``task`` may be a mixture (inline, or a registry ``tasks:`` entry of
this shape)::

    task:
      mixture:
        - {task: digits_mlp, weight: 1.0}                       # a registry name
        - {task: digits_mlp_reparam, weight: 1.0}
        - {name: wide, task: {name: image_mlp, dataset: digits, hidden_sizes: [128]}}  # inline: needs a name
        - {task: python_lstm, scale: 1.9}                        # its own normaliser (below)
      subset: 2          # optional: train this many members per meta-step, drawn by weight
      normalise: chance  # or none (default chance)

Each member has its own estimator state (its particles' inner runs): tasks
of different shapes are different programs, so the meta-step unrolls every
member in turn inside ONE compiled function (compiled once; its compile time
grows with the number of members). The meta-gradient is the weighted mean
of the members' estimates, ``g = sum_k w_k g_k / sum_k w_k``, over the
members trained this meta-step. With ``subset: S`` a meta-step draws ``S``
distinct members (with probabilities proportional to the weights, without
replacement) and skips the others with ``lax.cond``, so it costs about ``S``
members' meta-steps.

``normalise: chance`` divides each member's meta-loss (and so its gradient)
by its task's ``chance_loss`` (``ln 10`` for a ten-class classifier, ``ln
256`` for a byte model), so that a member with larger losses does not
dominate the mixture; a member whose task has no chance loss is left as it
is. ``none`` leaves every meta-loss as its task's normaliser makes it. A
member's ``scale: X`` (a positive number) divides that member's meta-loss by
``X`` whatever ``normalise`` says: the normaliser of a reference run, for
example the mean normalised training loss of Adam tuned on that task over
the run's horizon (``lofw evaluate hyperparam --task digits_mlp_wide --steps
2000 --baseline adam`` prints it as Adam's mean loss), so that every member's meta-loss is
in units of what tuned Adam reaches there.

Metrics lines gain ``meta_loss.<member>`` for every member trained that
meta-step; ``meta_loss`` is the weighted mean of those (normalised).

Evaluation of a mixture run (``lofw evaluate``, grid cells) uses the first
member unless a task is named.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from lofw.errors import ConfigError, choices
from lofw.interfaces.estimator import AbstractEstimator
from lofw.interfaces.task import AbstractTask
from lofw.meta.checkpoint import TrainingState
from lofw.meta.meta_step import diverged_particles, outer_step
from lofw.runtime.compile import compiler_options

MIXTURE = "mixture"
NORMALISE = ("chance", "none")


@dataclasses.dataclass(frozen=True)
class Member:
    """One task of a mixture: its name (in metrics), task spec and weight."""

    name: str
    spec: Any
    weight: float
    scale: float | None = None  # the member's own normaliser (e.g. tuned Adam's mean loss), else None


@dataclasses.dataclass(frozen=True)
class Mixture:
    """A validated mixture (module docstring)."""

    members: tuple[Member, ...]
    subset: int | None = None
    normalise: Literal["chance", "none"] = "chance"

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(m.weight for m in self.members)


def is_mixture(spec: Any, registry: Any = None) -> bool:
    """True when a task spec (or the registry task it names) is a mixture."""
    if isinstance(spec, str) and registry is not None:
        spec = registry.tasks.get(spec)
    return isinstance(spec, dict) and MIXTURE in spec


def parse_mixture(spec: Any, registry: Any, where: str = "task") -> Mixture | None:
    """The :class:`Mixture` of a task spec, or None for a single task.

    Raises:
        ConfigError: an empty mixture, a member that is not a mapping with
            ``task``, a weight that is not a positive number, two members of
            one name, an unknown key, a bad ``subset`` or ``normalise``.
            Unknown task names are reported when the members are built.
    """
    if isinstance(spec, str) and registry is not None and is_mixture(spec, registry):
        where = f"{registry.path}: tasks.{spec}" if registry.path else f"tasks.{spec}"
        spec = registry.tasks[spec]
    if not is_mixture(spec):
        return None
    unknown = sorted(set(spec) - {MIXTURE, "subset", "normalise"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} of a mixture; valid keys: mixture, normalise, subset")
    entries = spec[MIXTURE]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}.mixture: empty mixture; list at least one {{task: NAME, weight: W}}")
    members, seen = [], {}
    for i, entry in enumerate(entries):
        place = f"{where}.mixture[{i}]"
        if isinstance(entry, str):
            entry = {"task": entry}
        if not isinstance(entry, dict) or "task" not in entry:
            raise ConfigError(f"{place}: expected {{task: NAME or inline task, weight: W}}, got {entry!r}")
        extra = sorted(set(entry) - {"task", "weight", "name", "scale"})
        if extra:
            raise ConfigError(f"{place}: unknown key {extra[0]!r}; valid keys: name, scale, task, weight")
        task = entry["task"]
        if is_mixture(task, registry):
            raise ConfigError(f"{place}.task: a mixture cannot hold a mixture; list its members here")
        name = entry.get("name", task if isinstance(task, str) else None)
        if not isinstance(name, str) or not name or any(c in name for c in " .\t\n"):
            raise ConfigError(f"{place}: an inline task needs a `name` (no spaces or dots) for its metrics"
                              if name is None else f"{place}.name: bad member name {name!r} (no spaces or dots)")
        weight = entry.get("weight", 1.0)
        if not _positive(weight):
            raise ConfigError(f"{place}.weight: must be a positive number, got {weight!r}")
        scale = entry.get("scale")
        if scale is not None and not _positive(scale):
            raise ConfigError(f"{place}.scale: must be a positive number, got {scale!r}")
        if name in seen:
            raise ConfigError(f"{place}: two members named {name!r} (also {where}.mixture[{seen[name]}]); "
                              f"give one a `name`")
        seen[name] = i
        members.append(Member(name, task, float(weight), None if scale is None else float(scale)))
    subset = spec.get("subset")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or not 1 <= subset <= len(members)):
        raise ConfigError(f"{where}.subset: must be an integer from 1 to {len(members)} (the members), got {subset!r}")
    normalise = spec.get("normalise", "chance")
    if normalise not in NORMALISE:
        raise ConfigError(f"{where}.normalise: unknown {normalise!r}; valid choices: {choices(NORMALISE)}")
    return Mixture(tuple(members), None if subset in (None, len(members)) else subset, normalise)


def _positive(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def evaluation_task(spec: Any, registry: Any) -> Any:
    """The task a run is evaluated on: ``spec`` itself, or a mixture's first member."""
    mixture = parse_mixture(spec, registry)
    return spec if mixture is None else mixture.members[0].spec


def loss_scale(task: AbstractTask, normalise: str, scale: float | None = None) -> float:
    """What a member's meta-loss is divided by: its ``scale``, else per ``normalise`` (module docstring)."""
    if scale is not None:
        return scale
    chance = task.chance_loss
    return float(chance) if normalise == "chance" and chance else 1.0


def make_mixture_meta_step(
    estimator: AbstractEstimator, outer: optax.GradientTransformation, static: Any, mixture: Mixture,
    scales: tuple[float, ...],
):
    """The meta-step of a mixture, one compiled function (module docstring).

    ``meta_step(state, tasks)`` with ``state.estimator_state`` a tuple of
    the members' estimator states and ``tasks`` the members' tasks.
    """
    names, weights = [m.name for m in mixture.members], jnp.asarray(mixture.weights, jnp.float32)
    k = len(names)

    @eqx.filter_jit(compiler_options=compiler_options())
    def meta_step(state: TrainingState, tasks: tuple[AbstractTask, ...]):
        opt = eqx.combine(state.theta, static)
        key = jax.random.fold_in(state.key, state.step)
        k_pick, k_members = jax.random.split(key)
        if mixture.subset is None:
            chosen = jnp.ones((k,), bool)
        else:
            picked = jax.random.choice(k_pick, k, (mixture.subset,), replace=False, p=weights / weights.sum())
            chosen = jnp.zeros((k,), bool).at[picked].set(True)
        zero = jax.tree_util.tree_map(jnp.zeros_like, state.theta)
        total = jnp.sum(jnp.where(chosen, weights, 0.0))
        grad, states, metrics = zero, [], {}
        losses = resets = dead = jnp.zeros(())
        for i, task in enumerate(tasks):

            def train(est_state, task=task, i=i):
                g, out = estimator.estimate(opt, task, est_state, jax.random.fold_in(k_members, i))
                g = jax.tree_util.tree_map(lambda x: x / scales[i], g)
                return (g, out.state, jnp.mean(out.meta_loss) / scales[i], jnp.sum(out.resets),
                        diverged_particles(out.meta_loss, task.max_meta_loss).astype(jnp.float32))

            def skip(est_state):
                return zero, est_state, jnp.float32(jnp.nan), jnp.zeros(()), jnp.zeros(())

            g, s, loss, r, d = jax.lax.cond(chosen[i], train, skip, state.estimator_state[i]) \
                if mixture.subset is not None else train(state.estimator_state[i])
            share = jnp.where(chosen[i], weights[i] / total, 0.0)
            grad = jax.tree_util.tree_map(lambda a, b, share=share: a + share * b, grad, g)
            losses = losses + jnp.where(chosen[i], share * loss, 0.0)
            resets, dead = resets + r, dead + d
            states.append(s)
            metrics[f"meta_loss.{names[i]}"] = loss
        theta, outer_state, update_metrics = outer_step(outer, state, grad)
        metrics = {
            "meta_loss": losses,
            "grad_norm": update_metrics["grad_norm"],
            "nan_grads": update_metrics["nan_grads"],
            "resets": resets.astype(jnp.int32),
            "diverged": dead.astype(jnp.int32),
            "theta_norm": update_metrics["theta_norm"],
            **metrics,
        }
        return TrainingState(theta, outer_state, tuple(states), state.key, state.step + 1), metrics

    return meta_step
