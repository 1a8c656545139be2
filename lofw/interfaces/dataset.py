"""The ``dataset`` component kind: arrays on device and a key-driven sampler."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, PRNGKeyArray

#: Split names every dataset serves (the reference's 80/10/10 train split).
SPLITS = ("train", "inner_valid", "outer_valid", "test")

Batch = dict[str, Array]


class AbstractDataset(eqx.Module):
    """A dataset whose arrays live on device, sampled with JAX keys.

    ``sample`` is pure and jit-able: a batch is drawn inside the compiled
    inner loop, never by a Python iterator.
    """

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, batch_size: int, split: str = "train") -> Batch:
        """Draw ``batch_size`` examples of ``split`` uniformly with ``key``."""
