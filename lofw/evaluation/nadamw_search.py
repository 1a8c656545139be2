"""NAdamW tuned by random search: the strong baseline of the paper's Appendix B.3.

The paper tunes NAdamW on every task with 1000 random hyperparameter trials;
lofw samples ``trials`` (default :data:`DEFAULT_TRIALS`) from this space, each
coordinate independently:

=================  ==========================================================
learning rate      log-uniform in [1e-5, 1e-1]
``b1``             ``1 - u``, ``u`` log-uniform in [1e-3, 1]  (b1 in [0, 0.999])
``b2``             ``1 - u``, ``u`` log-uniform in [1e-4, 1e-1]  (b2 in [0.9, 0.9999])
weight decay       0 with probability 1/4, else log-uniform in [1e-6, 1e-1]
warmup             a fraction of the run, uniform in [0, 0.1]: the learning rate
                   rises linearly from ``lr / warmup_steps`` to ``lr``
schedule           after the warmup, constant or cosine decay to 0 at the last
                   step, each with probability 1/2
=================  ==========================================================

Trial 0 is not sampled: it is NAdamW's usual setting (lr 1e-3, b1 0.9, b2
0.999, weight decay 1e-4, no warmup, constant), so a small budget never does
worse than the defaults. The weight decay is decoupled and scaled by the
learning-rate schedule, as in ``optax.nadamw``; ``eps`` is 1e-8.

Every trial trains fresh task instances on the tuning seeds for the tuning
length; its score is the mean task-normalised training loss over steps and
seeds (the meta-objective's measure, finite even for a diverged run); the
lowest score wins. Trials run :data:`TRIAL_BATCH` at a time in one compiled
call (``vmap`` over trials of ``vmap`` over seeds of a ``lax.scan``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from lofw.evaluation.curves import loss_curves, normalised
from lofw.interfaces.optimizer import AbstractOptimizer
from lofw.interfaces.task import AbstractTask
from lofw.runtime.compile import compiled

#: Default number of random-search trials (the paper used 1000).
DEFAULT_TRIALS = 8
#: Trials trained together in one compiled call.
TRIAL_BATCH = 8
#: Hyperparameter names, in the order of :class:`NAdamW`'s fields.
HYPERPARAMETERS = ("lr", "b1", "b2", "weight_decay", "warmup", "cosine")
#: Trial 0: NAdamW's usual setting.
DEFAULTS = {"lr": 1e-3, "b1": 0.9, "b2": 0.999, "weight_decay": 1e-4, "warmup": 0.0, "cosine": 0.0}


class NAdamW(AbstractOptimizer):
    """optax NAdamW with a linear warmup and an optional cosine decay.

    Hyperparameters are array fields (so trials are one ``vmap``); ``steps``,
    the length of the run the schedule spans, is static.
    """

    lr: Float[Array, ""]
    b1: Float[Array, ""]
    b2: Float[Array, ""]
    weight_decay: Float[Array, ""]
    warmup: Float[Array, ""]          # fraction of ``steps``
    cosine: Float[Array, ""]          # 1.0: cosine decay after the warmup, 0.0: constant
    steps: int = eqx.field(static=True)

    def schedule(self, count: Array) -> Array:
        t = jnp.asarray(count, jnp.float32)
        warm_steps = self.warmup * self.steps
        warm = jnp.where(warm_steps > 0, jnp.minimum(1.0, (t + 1.0) / jnp.maximum(warm_steps, 1.0)), 1.0)
        progress = jnp.clip((t - warm_steps) / jnp.maximum(self.steps - warm_steps, 1.0), 0.0, 1.0)
        decay = self.cosine * 0.5 * (1.0 + jnp.cos(jnp.pi * progress)) + (1.0 - self.cosine)
        return self.lr * warm * decay

    def _tx(self) -> optax.GradientTransformation:
        return optax.chain(
            optax.scale_by_adam(b1=self.b1, b2=self.b2, eps=1e-8, nesterov=True),
            optax.add_decayed_weights(self.weight_decay),
            optax.scale_by_learning_rate(self.schedule),
        )

    def init(self, params):
        return self._tx().init(params)

    def update(self, grads, state, params):
        return self._tx().update(grads, state, params)


def nadamw(hyperparameters: dict[str, float], steps: int) -> NAdamW:
    """A :class:`NAdamW` from a dict of :data:`HYPERPARAMETERS` for a run of ``steps`` steps."""
    return NAdamW(**{k: jnp.float32(hyperparameters[k]) for k in HYPERPARAMETERS}, steps=int(steps))


def sample_trials(key: PRNGKeyArray, n: int) -> dict[str, np.ndarray]:
    """``n`` trials from the search space (trial 0 = :data:`DEFAULTS`); each value ``[n]``."""
    k = jax.random.split(key, 7)

    def log_uniform(key, low, high):
        return np.exp(np.asarray(jax.random.uniform(key, (n,), minval=math.log(low), maxval=math.log(high))))

    uniform = lambda key: np.asarray(jax.random.uniform(key, (n,)))
    trials = {
        "lr": log_uniform(k[0], 1e-5, 1e-1),
        "b1": 1.0 - log_uniform(k[1], 1e-3, 1.0),
        "b2": 1.0 - log_uniform(k[2], 1e-4, 1e-1),
        "weight_decay": np.where(uniform(k[3]) < 0.25, 0.0, log_uniform(k[4], 1e-6, 1e-1)),
        "warmup": 0.1 * uniform(k[5]),
        "cosine": (uniform(k[6]) < 0.5).astype(np.float64),
    }
    trials = {name: v.astype(np.float64) for name, v in trials.items()}
    for name, value in DEFAULTS.items():
        trials[name][0] = value
    return trials


def _trial_curves(hp: dict[str, Array], task: AbstractTask, keys: Array, *, steps: int):
    def one(h):
        return loss_curves(NAdamW(**h, steps=steps), task, keys, steps=steps)

    return jax.vmap(one)(hp)


def trial_curves(hp: dict[str, Array], task: AbstractTask, keys: Array, *, steps: int) -> Float[Array, "trials seeds steps"]:
    """Training losses of every trial in ``hp`` (arrays ``[trials]``), in one compiled call."""
    return compiled(_trial_curves)(hp, task, keys, steps=steps)


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """The outcome of :func:`random_search`: every trial, its score, and the best one."""

    trials: dict[str, np.ndarray]
    scores: np.ndarray           # [trials], inf where not finite
    best: int

    @property
    def best_hyperparameters(self) -> dict[str, float]:
        return {k: float(v[self.best]) for k, v in self.trials.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "hyperparameters": self.best_hyperparameters,
            "trials": [
                {**{k: float(v[i]) for k, v in self.trials.items()},
                 "score": float(self.scores[i]) if np.isfinite(self.scores[i]) else None}
                for i in range(len(self.scores))
            ],
        }


def random_search(
    task: AbstractTask, keys: Array, *, steps: int, trials: int = DEFAULT_TRIALS, key: PRNGKeyArray | None = None,
    batch: int = TRIAL_BATCH,
) -> SearchResult:
    """Tune NAdamW on ``task`` by random search (see the module docstring).

    Args:
        task: the task; its ``normalizer`` scores a run.
        keys: one PRNG key per tuning seed (fresh instances, as in training).
        steps: the length of each trial run (and of its schedule).
        trials: number of trials (>= 1).
        key: PRNG key of the search (default ``PRNGKey(0)``).
        batch: trials per compiled call (the last batch is padded, not recompiled).
    """
    trials_hp = sample_trials(key if key is not None else jax.random.PRNGKey(0), int(trials))
    scores = np.full(int(trials), np.inf)
    batch = max(1, min(int(batch), int(trials)))
    for start in range(0, int(trials), batch):
        idx = np.arange(start, start + batch)
        idx = np.where(idx < trials, idx, 0)      # pad with trial 0; its extra scores are dropped
        hp = {k: jnp.asarray(v[idx], jnp.float32) for k, v in trials_hp.items()}
        curves = np.asarray(trial_curves(hp, task, keys, steps=steps))
        for j in range(min(batch, int(trials) - start)):
            score = float(np.mean(normalised(curves[j], task)))
            scores[start + j] = score if math.isfinite(score) else np.inf
    return SearchResult(trials=trials_hp, scores=scores, best=int(np.argmin(scores)))
