"""The grid file: one base cell config, the axes varied over it, and how to evaluate.

A grid file (YAML, read with a safe loader) looks like::

    name: star_weight_decay
    base:                       # one cell's full MetaTrainConfig; every key has a default
      recipe: star
      task: fmnist_mlp
      estimator: {name: pes, truncation: 50, std: 0.01, particles: 8}
      outer: {lr: 1.0e-4, weight_decay: 0.0, clip: 1.0}
      meta_steps: 5000
      horizon: 2000
    axes:                       # cartesian product; keys are dotted paths into base
      recipe: [star, blackbox, hyperparam]
      outer.weight_decay: [0.0, 0.1, 0.5, 1.0]
    zip:                        # optional: lists varied together (one group = one extra axis)
      - {estimator.truncation: [25, 50], estimator.std: [0.02, 0.01]}
    exclude:                    # optional: a cell matching every key of an entry is dropped
      - {recipe: blackbox, outer.weight_decay: 1.0}
    seeds: [0, 1, 2, 3, 4]      # meta-training seeds (the `seed` key of base)
    eval: {horizons: [2000, 20000], seeds: 5, baselines: [adam], tasks: fig4_offline}

The number of cells is ``prod(len(axis)) * prod(len(zip group)) - excluded``,
times ``len(seeds)``.
"""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import ConfigDict, Field


class EvalConfig(pydantic.BaseModel):
    """How each meta-trained optimizer is evaluated past its horizon.

    Attributes:
        horizons: inner-training lengths; each trains fresh task instances for
            that many steps. Empty means ``[10 * base.horizon]`` (the paper
            evaluates at 10x the meta-training horizon).
        seeds: fresh task instances per horizon (one vmapped call).
        baselines: hand-designed optimizers trained on the same instances
            (``adam``: learning rate picked from a half-decade grid).
        tasks: out-of-distribution tasks every finished cell is also
            evaluated on (a suite name of ``registry.yaml`` or a list of task
            names; see :mod:`lofw.grid.ood`), each for the suite's steps or
            else the longest of ``horizons``, with ``seeds`` and ``baselines``.
            Not part of a cell's id: adding tasks to a grid that has run
            keeps its cells and only adds the evaluations.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizons: list[pydantic.PositiveInt] = []
    seeds: pydantic.PositiveInt = 5
    baselines: list[str] = ["adam"]
    tasks: str | list[str] | None = None


class GridConfig(pydantic.BaseModel):
    """A validated grid file (see the module docstring for the format).

    ``base`` stays a plain mapping here: it is validated cell by cell against
    :class:`lofw.meta.config.MetaTrainConfig` once the axes are applied, so
    an error names the axis value that caused it (see :mod:`lofw.grid.validate`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    base: dict[str, Any] = {}
    axes: dict[str, list[Any]] = {}
    zip: list[dict[str, list[Any]]] = []
    exclude: list[dict[str, Any]] = []
    seeds: list[int] = Field(default=[0], min_length=1)
    eval: EvalConfig = EvalConfig()
