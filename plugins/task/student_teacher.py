"""``student_teacher``: a family of random regressions, a student MLP fitting a random teacher MLP.

Each episode draws a teacher, an MLP ``t: R^d -> R^m`` with ``teacher_hidden``
tanh layers and truncated-normal ``1/sqrt(fan_in)`` weights (the tasks' usual
initialisation, :mod:`lofw_plugins.task.layers`) and biases ``N(0, 0.1^2)``.
Batches are ``x ~ N(0, I_d)`` and ``y = t(x) + noise * N(0, I_m)``; the
student, an MLP of ``student_hidden`` ReLU layers started from the same
initialisation, is trained on the loss

    L = (1/B) sum_b 1/2 ||s(x_b) - y_b||^2.

Meta-loss normaliser: ``clip(L / L_0, 0, 1.5)``, non-finite -> 1.5, where
``L_0 = 1/2 E ||y||^2`` is the loss of predicting 0, estimated once per
episode from 4096 inputs: the meta-loss of every teacher is in units of
its trivial predictor's loss, as a classifier's is in units of chance.
"""

from __future__ import annotations

import itertools
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

import lofw
from lofw_plugins.task.layers import linear, linear_params, materialize
from lofw_plugins.task.wrapper import AbstractDefaultMemberFamily

#: The normaliser's bound, in units of the loss of predicting 0.
MAX_META_LOSS = 1.5
#: Inputs from which each episode estimates the loss of predicting 0.
PROBE = 4096
#: Standard deviation of the teacher's biases.
TEACHER_BIAS = 0.1

Layers = list[dict[str, Float[Array, "..."]]]


def mlp_params(key: PRNGKeyArray, sizes: tuple[int, ...]) -> Layers:
    """Truncated-normal ``1/sqrt(fan_in)`` weights and zero biases for layer ``sizes``."""
    return materialize(key, [linear_params(i, o) for i, o in itertools.pairwise(sizes)])


def mlp(layers: Layers, x: Float[Array, "b i"], act: Any) -> Float[Array, "b o"]:
    """The layers with ``act`` between them (none after the last)."""
    for layer in layers[:-1]:
        x = act(linear(layer, x))
    return linear(layers[-1], x)


class Regression(lofw.AbstractTask):
    """One member: fit the teacher ``teacher`` (module docstring)."""

    teacher: Layers
    zero_loss: Float[Array, ""]
    student_sizes: tuple[int, ...] = eqx.field(static=True)
    noise: float = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)

    def init(self, key: PRNGKeyArray) -> Layers:
        return mlp_params(key, self.student_sizes)

    def sample_batch(self, key: PRNGKeyArray, split: str = "train") -> dict[str, Array]:
        del split  # a generated task: every split is a fresh draw
        k_x, k_noise = jax.random.split(key)
        x = jax.random.normal(k_x, (self.batch_size, self.student_sizes[0]), jnp.float32)
        y = mlp(self.teacher, x, jnp.tanh)
        return {"x": x, "y": y + self.noise * jax.random.normal(k_noise, y.shape, jnp.float32)}

    def loss(self, params: PyTree, batch: dict[str, Array]) -> Float[Array, ""]:
        residual = mlp(params, batch["x"], jax.nn.relu) - batch["y"]
        return 0.5 * jnp.mean(jnp.sum(residual**2, axis=-1))

    def normalizer(self, loss: Float[Array, ""]) -> Float[Array, ""]:
        scaled = loss / self.zero_loss
        return jnp.where(jnp.isfinite(scaled), jnp.clip(scaled, 0.0, MAX_META_LOSS), MAX_META_LOSS)

    @property
    def max_meta_loss(self) -> float:
        return MAX_META_LOSS


class StudentTeacher(AbstractDefaultMemberFamily):
    """The family (module docstring); its own methods are those of the
    member drawn from ``PRNGKey(0)``.

    Args:
        input_dim: ``d``, the inputs' dimension.
        output_dim: ``m``, the targets' dimension.
        teacher_hidden: the teacher's hidden layer sizes (tanh).
        student_hidden: the student's hidden layer sizes (ReLU).
        noise: standard deviation of the target noise (``>= 0``).
        batch_size: examples per batch.
    """

    input_dim: int = eqx.field(static=True)
    output_dim: int = eqx.field(static=True)
    teacher_hidden: tuple[int, ...] = eqx.field(static=True)
    student_hidden: tuple[int, ...] = eqx.field(static=True)
    noise: float = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)

    def __init__(self, input_dim: int = 16, output_dim: int = 4, teacher_hidden: tuple[int, ...] = (32,),
                 student_hidden: tuple[int, ...] = (64,), noise: float = 0.1, batch_size: int = 128):
        sizes = (input_dim, output_dim, *teacher_hidden, *student_hidden, batch_size)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"`input_dim`, `output_dim`, the hidden sizes and `batch_size` must be positive "
                             f"integers; got {input_dim}, {output_dim}, {list(teacher_hidden)}, "
                             f"{list(student_hidden)}, {batch_size}")
        if not noise >= 0:
            raise ValueError(f"`noise` must be non-negative; got {noise}")
        self.input_dim, self.output_dim, self.batch_size = input_dim, output_dim, batch_size
        self.teacher_hidden, self.student_hidden = tuple(teacher_hidden), tuple(student_hidden)
        self.noise = float(noise)

    def sample_config(self, key: PRNGKeyArray) -> dict[str, Any]:
        k_weights, k_bias, k_probe = jax.random.split(key, 3)
        teacher = mlp_params(k_weights, (self.input_dim, *self.teacher_hidden, self.output_dim))
        bias_keys = jax.random.split(k_bias, len(teacher))
        teacher = [{"w": layer["w"], "b": TEACHER_BIAS * jax.random.normal(k, layer["b"].shape, jnp.float32)}
                   for k, layer in zip(bias_keys, teacher)]
        y = mlp(teacher, jax.random.normal(k_probe, (PROBE, self.input_dim), jnp.float32), jnp.tanh)
        zero_loss = 0.5 * (jnp.mean(jnp.sum(y**2, axis=-1)) + self.output_dim * self.noise**2)
        return {"teacher": teacher, "zero_loss": zero_loss}

    def configured(self, config: dict[str, Any] | None) -> Regression:
        if config is None:
            config = self.sample_config(jax.random.PRNGKey(0))
        return Regression(config["teacher"], config["zero_loss"],
                          (self.input_dim, *self.student_hidden, self.output_dim), self.noise, self.batch_size)

    @property
    def max_meta_loss(self) -> float:
        return MAX_META_LOSS
