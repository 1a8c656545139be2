"""The ``lm1b`` dataset: the One Billion Word benchmark as raw UTF-8 bytes.

Prepared by lofw's tfds builder ``lofw_lm1b`` (no TensorFlow) from the
original archive ``1-billion-word-language-modeling-benchmark-r13output.tar.gz``
(or its extracted folder) in the manual folder
``<data folder>/downloads/manual/lofw_lm1b/``, else fetched by the download
manager; the data folder is chosen as for the image datasets
(:mod:`tfds_datasets`), and a missing dataset fails at once with a message
naming the files and the folder.

Tokens are bytes: no sentencepiece model, vocabulary 256 (the reference's
``lm1bbytes`` variant). Splits: the training shards' bytes concatenated in
order of file name form the original train corpus of ``N`` bytes; it is cut
just after the first newline at or after ``floor(0.8 N)`` and ``floor(0.9 N)``
(so no sentence is split) into ``train`` / ``inner_valid`` / ``outer_valid``.
``test`` is the heldout shards concatenated. The whole corpus (about 4 GB at
full size) is held on device; batches are byte windows (:mod:`text_dataset`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from jaxtyping import Array, UInt8

from lofw_plugins.dataset.image_dataset import TRAIN_FRACTIONS
from lofw_plugins.dataset.sources import SOURCES
from lofw_plugins.dataset.text_dataset import AbstractTextDataset, check_sequence_length, corpus_to_device
from lofw_plugins.dataset.tfds_datasets import data_folder, import_builders, manual_folder, prepare_source


def cut_at_lines(data: bytes) -> dict[str, bytes]:
    """``train`` / ``inner_valid`` / ``outer_valid`` cut after a newline at 80% and 90% of ``data``."""
    n = len(data)

    def cut(fraction: float) -> int:
        i = data.find(b"\n", int(n * fraction))
        return n if i < 0 else i + 1

    a, b = (cut(f) for f in TRAIN_FRACTIONS)
    return {"train": data[:a], "inner_valid": data[a:b], "outer_valid": data[b:]}


def _read_split(stored) -> bytes:
    return b"".join(ex["bytes"].tobytes() for ex in stored.__getitems__(list(range(len(stored)))))


@functools.lru_cache(maxsize=2)
def _load(data_dir: Path, manual: Path, download: bool) -> dict[str, bytes]:
    import tensorflow_datasets as tfds  # an optional extra (lofw[datasets]), heavy to import

    source = SOURCES["lm1b"]
    prepare_source(source, data_dir, manual, download)
    stored = tfds.data_source(source.builder, data_dir=str(data_dir), download=False)
    splits = cut_at_lines(_read_split(stored["train"]))
    splits["test"] = _read_split(stored["test"])
    return splits


def load_lm1b_splits(data_dir: str | None = None, manual_dir: str | None = None, download: bool = True) -> dict[str, bytes]:
    """The four splits of LM1B as bytes, preparing the dataset first if needed (cached per process)."""
    import_builders()
    root = data_folder(data_dir)
    manual = Path(manual_dir).expanduser().resolve() if manual_dir else manual_folder(SOURCES["lm1b"], root)
    return _load(root, manual, bool(download))


class LM1B(AbstractTextDataset):
    """LM1B bytes (see the module docs).

    Args:
        sequence_length: bytes a model reads per example (a batch holds one more).
        data_dir: the tfds data folder (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        manual_dir: where the original files are (default ``<data_dir>/downloads/manual/lofw_lm1b``).
        download: fetch the archive when it is not there.
    """

    corpus: dict[str, UInt8[Array, " n"]]
    sequence_length: int

    def __init__(self, sequence_length: int = 32, data_dir: str | None = None, manual_dir: str | None = None,
                 download: bool = True):
        self.sequence_length = check_sequence_length(sequence_length)
        splits = load_lm1b_splits(data_dir, manual_dir, download)
        self.corpus = corpus_to_device(splits, "lm1b", self.sequence_length)
