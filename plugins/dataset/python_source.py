"""The ``python_source`` dataset: bytes of the Python standard library's source.

Every ``*.py`` file under the running interpreter's standard-library folder
(``sysconfig.get_paths()["stdlib"]``), except those below a
``site-packages``, ``dist-packages`` or ``__pycache__`` folder, read as raw
bytes. It needs no download and is always present, so it is the offline
language-modelling corpus of the tests and the small generalisation tasks.

Split of a file: by a hash of its path relative to the stdlib root, written
with ``/`` separators, so the split does not depend on where Python lives or
on the order the file system lists files::

    bucket = int(sha256(relative_path)[:8 bytes], big endian) mod 100
    split  = train (bucket < 80), inner_valid (< 90), outer_valid (< 95), test (else)

A split's corpus is its files' bytes concatenated in order of relative path.
Its size depends on the Python build; measured with CPython 3.11.7 on the
development machine: 1790 files, 31,525,224 bytes in all (train 25,988,301,
inner_valid 2,350,997, outer_valid 1,468,029, test 1,717,897); the stdlib's own
``test/`` package is 17.1 MB of it.
"""

from __future__ import annotations

import functools
import hashlib
import sysconfig
from pathlib import Path

from jaxtyping import Array, UInt8

from lofw import SPLITS, LofwError
from lofw_plugins.dataset.text_dataset import AbstractTextDataset, check_sequence_length, corpus_to_device

#: Folders whose contents are not the standard library.
EXCLUDED_FOLDERS = frozenset({"site-packages", "dist-packages", "__pycache__"})
#: Upper bucket bounds (of 100) of train, inner_valid, outer_valid; the rest is test.
SPLIT_BOUNDS = (80, 90, 95)


def stdlib_root() -> Path:
    """The running interpreter's standard-library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def split_of(relative_path: str) -> str:
    """The split of a file, from the SHA-256 of its ``/``-separated relative path."""
    bucket = int.from_bytes(hashlib.sha256(relative_path.encode("utf-8")).digest()[:8], "big") % 100
    for split, bound in zip(SPLITS, SPLIT_BOUNDS):
        if bucket < bound:
            return split
    return SPLITS[-1]


def python_files(root: Path) -> list[str]:
    """Relative ``/``-separated paths of the ``*.py`` files under ``root``, sorted."""
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if path.is_file() and not EXCLUDED_FOLDERS.intersection(rel.parts[:-1]):
            found.append(rel.as_posix())
    return sorted(found)


@functools.lru_cache(maxsize=2)
def read_corpus(root: Path) -> dict[str, bytes]:
    """``{split: concatenated bytes}`` of the ``*.py`` files under ``root`` (cached per process)."""
    files = python_files(root)
    if not files:
        raise LofwError(
            f"dataset 'python_source' found no *.py files under {root}; pass root=... naming a folder of "
            f"Python sources (default: the standard library, sysconfig.get_paths()['stdlib'])"
        )
    parts: dict[str, list[bytes]] = {s: [] for s in SPLITS}
    for rel in files:
        parts[split_of(rel)].append((root / rel).read_bytes())
    return {s: b"".join(chunks) for s, chunks in parts.items()}


class PythonSource(AbstractTextDataset):
    """Bytes of the standard library's ``*.py`` files (see the module docs).

    Args:
        sequence_length: bytes a model reads per example (a batch holds one more).
        root: folder to read instead of the standard library.
    """

    corpus: dict[str, UInt8[Array, " n"]]
    sequence_length: int

    def __init__(self, sequence_length: int = 32, root: str | None = None):
        self.sequence_length = check_sequence_length(sequence_length)
        folder = Path(root).expanduser().resolve() if root else stdlib_root()
        self.corpus = corpus_to_device(read_corpus(folder), "python_source", self.sequence_length)
