"""Byte-level text datasets held on device and sampled with JAX keys.

Each split is one corpus: the UTF-8 bytes of its documents concatenated in a
fixed order, stored on device as a single ``uint8`` array of length ``N``. A
batch is ``B`` windows of ``L + 1`` consecutive bytes (``L`` the
``sequence_length``) at uniformly drawn starts::

    start ~ Uniform{0, ..., N - L - 1}^B         (jax.random.randint, with replacement)
    batch = {"tokens": int32 corpus[start_b + j]  for j = 0 .. L}   # [B, L + 1]

A language model reads ``tokens[:, :-1]`` and predicts ``tokens[:, 1:]``. The
vocabulary is the 256 byte values; windows may span a document boundary (as
the reference's byte-level LM1B streams do).
"""

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar
from jaxtyping import Array, PRNGKeyArray, UInt8

import lofw
from lofw import SPLITS, Batch, ConfigError, choices

#: Number of distinct tokens: the byte values 0..255.
BYTE_VOCAB = 256


def corpus_to_device(splits: dict[str, bytes | np.ndarray], name: str, sequence_length: int) -> dict[str, Array]:
    """Move ``{split: bytes}`` to device as ``uint8`` arrays, checking every split holds a window."""
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise ValueError(f"dataset {name!r} lacks split(s) {choices(missing)}")
    out = {}
    for split in SPLITS:
        data = splits[split]
        arr = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data, np.uint8)
        if arr.size < sequence_length + 1:
            raise ValueError(
                f"dataset {name!r} split {split!r} holds {arr.size} bytes, fewer than one window of "
                f"sequence_length + 1 = {sequence_length + 1}"
            )
        out[split] = jnp.asarray(arr)
    return out


class AbstractTextDataset(lofw.AbstractDataset):
    """A byte corpus per split of ``lofw.SPLITS``, on device.

    Final subclasses fill ``corpus`` (use :func:`corpus_to_device`) and
    ``sequence_length``.

    Attributes:
        corpus: split name -> ``uint8 [N]``.
        sequence_length: ``L``; a batch holds windows of ``L + 1`` bytes.
        vocab_size: 256.
    """

    corpus: AbstractVar[dict[str, UInt8[Array, " n"]]]
    sequence_length: AbstractVar[int]
    vocab_size: ClassVar[int] = BYTE_VOCAB

    def size(self, split: str = "train") -> int:
        """Bytes in ``split``."""
        return int(self.corpus[_check_split(split)].shape[0])

    def sample(self, key: PRNGKeyArray, batch_size: int, split: str = "train") -> Batch:
        """``batch_size`` windows of ``sequence_length + 1`` bytes of ``split``.

        Returns:
            ``{"tokens": int32 [B, sequence_length + 1]}``.
        """
        corpus = self.corpus[_check_split(split)]
        length = self.sequence_length + 1
        start = jax.random.randint(key, (batch_size,), 0, corpus.shape[0] - length + 1)
        return {"tokens": corpus[start[:, None] + jnp.arange(length)].astype(jnp.int32)}


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid choices: {choices(SPLITS)}")
    return split


def check_sequence_length(sequence_length: int) -> int:
    """``sequence_length`` as a positive int, or a ValueError."""
    if int(sequence_length) < 1:
        raise ValueError(f"sequence_length must be positive, got {sequence_length}")
    return int(sequence_length)
