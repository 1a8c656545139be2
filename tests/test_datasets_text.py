"""Byte corpora: ``python_source`` on files written here, window sampling, and the ``lm1b`` builder."""

import hashlib
import io
import sysconfig
import tarfile
from pathlib import Path

import jax
import numpy as np
import pytest

import lofw
from lofw.tasks import build_dataset
from lofw.testing import check_component
from lofw_plugins.dataset import python_source
from lofw_plugins.dataset.python_source import PythonSource

SPLIT_ORDER = ("train", "inner_valid", "outer_valid", "test")


def expected_split(relative):
    """The documented rule, written out again: sha256 bucket mod 100 against 80 / 90 / 95."""
    bucket = int(hashlib.sha256(relative.encode()).hexdigest()[:16], 16) % 100
    return "train" if bucket < 80 else "inner_valid" if bucket < 90 else "outer_valid" if bucket < 95 else "test"


def write_sources(root):
    """Two files per split (nested and top level), plus files that must be skipped."""
    chosen = {s: [] for s in SPLIT_ORDER}
    i = 0
    while any(len(v) < 2 for v in chosen.values()):
        rel = f"pkg_{i % 3}/mod_{i}.py" if i % 2 else f"mod_{i}.py"
        if len(chosen[expected_split(rel)]) < 2:
            chosen[expected_split(rel)].append(rel)
        i += 1
    for split, rels in chosen.items():
        for rel in rels:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(f"# {rel} in {split}\nx = 'caf\u00e9'\n".encode())
    for skipped in ("site-packages/foo.py", "pkg_0/__pycache__/bar.py", "notes.txt", "dist-packages/a/b.py"):
        (root / skipped).parent.mkdir(parents=True, exist_ok=True)
        (root / skipped).write_bytes(b"SKIPPED" * 50)
    return {s: b"".join((root / r).read_bytes() for r in sorted(rels)) for s, rels in chosen.items()}


def test_python_source_reads_splits_by_path_hash_and_skips_non_stdlib(tmp_path):
    expected = write_sources(tmp_path)
    ds = PythonSource(sequence_length=8, root=str(tmp_path))
    for split in SPLIT_ORDER:
        assert np.asarray(ds.corpus[split]).tobytes() == expected[split]
    assert b"SKIPPED" not in b"".join(expected.values())
    assert ds.vocab_size == 256 and ds.sequence_length == 8


def test_windows_are_consecutive_bytes_at_uniform_starts(tmp_path):
    write_sources(tmp_path)
    ds = build_dataset({"name": "python_source", "root": str(tmp_path), "sequence_length": 5})
    key = jax.random.key(3)
    tokens = np.asarray(ds.sample(key, 6, "inner_valid")["tokens"])
    corpus = np.asarray(ds.corpus["inner_valid"])
    starts = np.asarray(jax.random.randint(key, (6,), 0, len(corpus) - 6 + 1))
    assert tokens.dtype == np.int32 and tokens.shape == (6, 6)
    np.testing.assert_array_equal(tokens, np.stack([corpus[s:s + 6] for s in starts]))
    check_component(ds)


def test_python_source_errors_name_the_folder(tmp_path):
    with pytest.raises(lofw.LofwError, match=rf"no \*\.py files under {tmp_path}"):
        PythonSource(root=str(tmp_path))
    write_sources(tmp_path)
    with pytest.raises(lofw.ConfigError, match=r"holds \d+ bytes, fewer than one window"):
        build_dataset({"name": "python_source", "root": str(tmp_path), "sequence_length": 100_000})


def test_default_root_is_the_running_pythons_stdlib():
    root = python_source.stdlib_root()
    assert root == Path(sysconfig.get_paths()["stdlib"])
    files = python_source.python_files(root)
    assert "os.py" in files and not any("site-packages" in f for f in files)


# --- lm1b --------------------------------------------------------------------------

TRAIN = "training-monolingual.tokenized.shuffled"
HELDOUT = "heldout-monolingual.tokenized.shuffled"


def lm1b_shards():
    """Shard path -> bytes (sentences, one per line, with non-ASCII UTF-8)."""
    shards = {}
    for k in (3, 1, 2):  # written out of order: the builder orders by name
        lines = [f"sentence {k}.{j} \u00fcber {'x' * (j % 5)} ." for j in range(7)]
        shards[f"{TRAIN}/news.en-0000{k}-of-00100"] = ("\n".join(lines) + "\n").encode()
    for k in (1, 0):
        shards[f"{HELDOUT}/news.en.heldout-0000{k}-of-00050"] = f"heldout {k} \u00e9 .\nline two .\n".encode()
    return shards


def write_lm1b(folder, layout, shards):
    top = "1-billion-word-language-modeling-benchmark-r13output"
    folder.mkdir(parents=True)
    if layout == "archive":
        with tarfile.open(folder / f"{top}.tar.gz", "w:gz") as tar:
            for name, data in shards.items():
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        for name, data in shards.items():
            (folder / top / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / top / name).write_bytes(data)


@pytest.mark.parametrize("layout", ["archive", "extracted_folder"])
def test_lm1b_builder_stores_bytes_and_cuts_train_after_a_newline(tmp_path, layout):
    pytest.importorskip("tensorflow_datasets")
    shards = lm1b_shards()
    write_lm1b(tmp_path / "manual", layout, shards)
    ds = build_dataset({"name": "lm1b", "data_dir": str(tmp_path / "data"), "manual_dir": str(tmp_path / "manual"),
                        "download": False, "sequence_length": 4})
    train = b"".join(shards[k] for k in sorted(k for k in shards if k.startswith(TRAIN)))
    n = len(train)
    a = train.index(b"\n", int(0.8 * n)) + 1
    b = train.index(b"\n", int(0.9 * n)) + 1
    got = {s: np.asarray(ds.corpus[s]).tobytes() for s in SPLIT_ORDER}
    assert got["train"] == train[:a] and got["inner_valid"] == train[a:b] and got["outer_valid"] == train[b:]
    assert got["test"] == shards[f"{HELDOUT}/news.en.heldout-00000-of-00050"] + shards[f"{HELDOUT}/news.en.heldout-00001-of-00050"]
    assert ds.sample(jax.random.key(0), 3, "test")["tokens"].shape == (3, 5)


def test_missing_lm1b_fails_at_once_naming_archive_and_folder(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    from lofw_plugins.dataset.tfds_datasets import DatasetUnavailableError

    with pytest.raises(DatasetUnavailableError) as err:
        build_dataset({"name": "lm1b", "data_dir": str(tmp_path), "download": False})
    message = str(err.value)
    assert "'lm1b' is not prepared" in message and "downloads are off" in message
    assert "1-billion-word-language-modeling-benchmark-r13output.tar.gz" in message
    assert str(tmp_path / "downloads" / "manual" / "lofw_lm1b") in message
