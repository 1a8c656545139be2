"""The ``imagenet32`` builder on tiny npz batches written here (the official npz layout).

Rows are built with explicit loops over (channel, row, column), independent of
the parser; counts are not the official ones.
"""

import math

import jax
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from lofw.tasks import build_dataset, build_task  # noqa: E402
from lofw_plugins.dataset import raw_formats  # noqa: E402
from lofw_plugins.dataset.tfds_datasets import DatasetUnavailableError  # noqa: E402

TRAIN_COUNTS = (2, 1, 1, 2, 1, 1, 1, 1, 1, 1)  # 12 images over train_data_batch_1..10
VAL_LABELS = (1000, 1, 500)  # 1-based, both ends of the range


def pixel(i, r, c, ch):
    return (i * 13 + r * 7 + c * 3 + ch * 59) % 256


def row(i):
    return [pixel(i, r, c, ch) for ch in range(3) for r in range(32) for c in range(32)]  # R plane, G, B


def write_release(folder):
    """Train batches in ``Imagenet32_train_npz/`` (as the zip extracts), ``val_data.npz`` at the top."""
    (folder / "Imagenet32_train_npz").mkdir(parents=True)
    start = 0
    for b, n in enumerate(TRAIN_COUNTS, start=1):
        ids = range(start, start + n)
        np.savez(folder / "Imagenet32_train_npz" / f"train_data_batch_{b}.npz",
                 data=np.array([row(i) for i in ids], np.uint8).reshape(n, 3072),
                 labels=[1 + (i * 377) % 1000 for i in ids], mean=np.zeros(3072))
        start += n
    np.savez(folder / "val_data.npz", data=np.array([row(100 + i) for i in range(3)], np.uint8),
             labels=list(VAL_LABELS))


def expected_images(ids):
    return np.array([[[[pixel(i, r, c, ch) for ch in range(3)] for c in range(32)] for r in range(32)] for i in ids])


def test_imagenet32_from_npz_batches_and_the_resnet_registry_task(tmp_path, monkeypatch):
    write_release(tmp_path / "downloads" / "manual" / "lofw_imagenet32")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    ds = build_dataset({"name": "imagenet32", "download": False})
    assert ds.num_classes == 1000 and ds.image_shape == (32, 32, 3)
    assert {s: ds.size(s) for s in ds.images} == {"train": 9, "inner_valid": 1, "outer_valid": 2, "test": 3}
    np.testing.assert_array_equal(np.asarray(ds.images["train"]), expected_images(range(9)))
    np.testing.assert_array_equal(np.asarray(ds.labels["outer_valid"]), [(i * 377) % 1000 for i in (10, 11)])
    np.testing.assert_array_equal(np.asarray(ds.images["test"]), expected_images(range(100, 103)))
    np.testing.assert_array_equal(np.asarray(ds.labels["test"]), [999, 0, 499])  # stored 0-based

    task = build_task("imagenet32_resnet")  # paper scale: count only, no forward pass
    shapes = jax.eval_shape(task.init, jax.random.key(0))
    assert sum(x.size for x in jax.tree.leaves(shapes)) == resnet_paper_count()
    assert task.chance_loss == pytest.approx(math.log(1000))
    assert task.max_meta_loss == pytest.approx(1.5 * math.log(1000))


def resnet_paper_count():
    """Stem 7x7x3x64; groups (128, 256, 512, 512) of one block; LayerNorm; 1000 classes."""
    ln = lambda c: 2 * c  # noqa: E731
    total = 7 * 7 * 3 * 64
    for c_in, c_out in ((64, 128), (128, 256), (256, 512), (512, 512)):
        projection = c_in * c_out  # every group changes channels (or, the last, stride 2)
        total += ln(c_in) + 9 * c_in * c_out + ln(c_out) + 9 * c_out * c_out + projection
    return total + ln(512) + 512 * 1000 + 1000


def test_missing_imagenet32_fails_at_once_even_with_downloads_on(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the download manager must not be called")

    monkeypatch.setattr(tfds.download.DownloadManager, "download", refuse)
    with pytest.raises(DatasetUnavailableError) as err:
        build_dataset({"name": "imagenet32", "data_dir": str(tmp_path)})
    message = str(err.value)
    assert "'imagenet32' is not prepared" in message and "cannot be downloaded automatically" in message
    assert str(tmp_path / "downloads" / "manual" / "lofw_imagenet32") in message
    assert "train_data_batch_1.npz" in message and "train_data_batch_10.npz" in message and "val_data.npz" in message


def test_bad_npz_batches_are_reported():
    import io

    def npz(**arrays):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    with pytest.raises(raw_formats.RawFormatError, match="labels must be 1..1000"):
        raw_formats.parse_imagenet32_npz(npz(data=np.zeros((2, 3072), np.uint8), labels=[0, 3]))
    with pytest.raises(raw_formats.RawFormatError, match=r"expected uint8 \[N, 3072\]"):
        raw_formats.parse_imagenet32_npz(npz(data=np.zeros((2, 100), np.uint8), labels=[1, 3]))
    with pytest.raises(raw_formats.RawFormatError, match="2 images but 1 labels"):
        raw_formats.parse_imagenet32_npz(npz(data=np.zeros((2, 3072), np.uint8), labels=[1]))
    with pytest.raises(raw_formats.RawFormatError, match="not an npz file"):
        raw_formats.parse_imagenet32_npz(b"not a zip", "x")
