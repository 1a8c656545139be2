"""lofw's tfds builders end to end on tiny original-format files written here.

The files are built byte by byte with ``struct`` and explicit loops (not with
the parsers under test); counts are deliberately not the official ones.
"""

import dataclasses
import gzip
import io
import struct
import subprocess
import sys
import tarfile

import jax
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

import lofw  # noqa: E402
from lofw.tasks import build_dataset, build_task  # noqa: E402
from lofw_plugins.dataset import raw_formats, sources, tfds_datasets  # noqa: E402
from lofw_plugins.dataset.tfds_datasets import DatasetUnavailableError  # noqa: E402


def idx_bytes(values, shape):
    header = struct.pack(">BBBB", 0, 0, 0x08, len(shape)) + b"".join(struct.pack(">I", s) for s in shape)
    return header + bytes(values)


def grey_pixel(i, r, c):
    return (i * 7 + r * 3 + c) % 256


def write_idx_release(folder, n_train, n_test, compress):
    """MNIST-layout files; image i has pixels grey_pixel(i, r, c), label (3 i + 1) mod 10."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        offset = 0 if prefix == "train" else 1000
        images = [grey_pixel(offset + i, r, c) for i in range(n) for r in range(28) for c in range(28)]
        labels = [(3 * (offset + i) + 1) % 10 for i in range(n)]
        for kind, data in (("images-idx3", idx_bytes(images, (n, 28, 28))), ("labels-idx1", idx_bytes(labels, (n,)))):
            name = f"{prefix}-{kind}-ubyte" + (".gz" if compress else "")
            (folder / name).write_bytes(gzip.compress(data) if compress else data)


def expected_idx(offset, n):
    x = np.array([[[grey_pixel(offset + i, r, c) for c in range(28)] for r in range(28)] for i in range(n)])
    return x[..., None], np.array([(3 * (offset + i) + 1) % 10 for i in range(n)])


def colour_pixel(i, r, c, ch):
    return (i * 11 + r * 5 + c * 3 + ch * 101) % 256


def cifar_batch(start, n):
    out = bytearray()
    for i in range(start, start + n):
        out.append(i % 10)
        for ch in range(3):  # red plane, green plane, blue plane, each row-major
            out.extend(colour_pixel(i, r, c, ch) for r in range(32) for c in range(32))
    return bytes(out)


CIFAR_TRAIN_COUNTS = (2, 3, 1, 2, 2)  # 10 training images over the five batches
CIFAR_TEST_COUNT = 4


def cifar_files():
    files, start = {}, 0
    for b, n in enumerate(CIFAR_TRAIN_COUNTS, start=1):
        files[f"data_batch_{b}.bin"] = cifar_batch(start, n)
        start += n
    files["test_batch.bin"] = cifar_batch(100, CIFAR_TEST_COUNT)
    return files


def expected_cifar(start, n):
    x = np.array([[[[colour_pixel(i, r, c, ch) for ch in range(3)] for c in range(32)] for r in range(32)]
                  for i in range(start, start + n)])
    return x, np.arange(start, start + n) % 10


def assert_splits(ds, train_x, train_y, test_x, test_y):
    n = len(train_x)
    a, b = int(0.8 * n), int(0.9 * n)
    for split, (lo, hi) in {"train": (0, a), "inner_valid": (a, b), "outer_valid": (b, n)}.items():
        np.testing.assert_array_equal(np.asarray(ds.images[split]), train_x[lo:hi])
        np.testing.assert_array_equal(np.asarray(ds.labels[split]), train_y[lo:hi])
    np.testing.assert_array_equal(np.asarray(ds.images["test"]), test_x)
    np.testing.assert_array_equal(np.asarray(ds.labels["test"]), test_y)


def test_mnist_from_the_default_manual_folder_under_tfds_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    write_idx_release(tmp_path / "downloads" / "manual" / "lofw_mnist", n_train=23, n_test=7, compress=True)
    ds = build_dataset({"name": "mnist", "download": False})
    assert {s: ds.size(s) for s in ds.images} == {"train": 18, "inner_valid": 2, "outer_valid": 3, "test": 7}
    assert_splits(ds, *expected_idx(0, 23), *expected_idx(1000, 7))
    # stored by tfds as array_record, readable with tfds.data_source
    assert list((tmp_path / "lofw_mnist" / "1.0.0").glob("lofw_mnist-train.array_record*"))
    stored = tfds.data_source("lofw_mnist", data_dir=str(tmp_path), download=False)
    assert len(stored["train"]) == 23 and len(stored["test"]) == 7
    np.testing.assert_array_equal(stored["train"][5]["image"], expected_idx(0, 23)[0][5])
    # batches: pixels / 255, labels int32
    key = jax.random.key(4)
    batch = ds.sample(key, 8, "test")
    idx = np.asarray(jax.random.randint(key, (8,), 0, 7))
    test_x, test_y = expected_idx(1000, 7)
    np.testing.assert_allclose(batch["image"], test_x[idx] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(batch["label"], test_y[idx])


def test_prepared_data_is_reused_without_the_original_files(tmp_path):
    manual = tmp_path / "raw"
    write_idx_release(manual, n_train=11, n_test=3, compress=False)
    first = build_dataset({"name": "mnist", "data_dir": str(tmp_path / "data"), "manual_dir": str(manual)})
    for f in manual.iterdir():
        f.unlink()
    tfds_datasets._load.cache_clear()
    again = build_dataset({"name": "mnist", "data_dir": str(tmp_path / "data"), "download": False})
    np.testing.assert_array_equal(np.asarray(again.images["train"]), np.asarray(first.images["train"]))
    assert again.size("train") == 8 and again.size("test") == 3


def test_fmnist_mlp_registry_task_on_fashion_mnist_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    write_idx_release(tmp_path / "downloads" / "manual" / "lofw_fashion_mnist", n_train=30, n_test=5, compress=False)
    task = build_task("fmnist_mlp")
    assert type(task.dataset).__name__ == "FashionMNIST"
    assert_splits(task.dataset, *expected_idx(0, 30), *expected_idx(1000, 5))
    params = task.init(jax.random.key(0))
    assert sum(x.size for x in jax.tree.leaves(params)) == 118_282
    assert np.isfinite(float(task.loss(params, task.sample_batch(jax.random.key(1)))))


@pytest.mark.parametrize("layout", ["archive", "extracted_folder"])
def test_cifar10_binary_release(tmp_path, layout):
    manual = tmp_path / "manual"
    manual.mkdir()
    files = cifar_files()
    if layout == "archive":
        with tarfile.open(manual / "cifar-10-binary.tar.gz", "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        (manual / "cifar-10-batches-bin").mkdir()
        for name, data in files.items():
            (manual / "cifar-10-batches-bin" / name).write_bytes(data)
    ds = build_dataset({"name": "cifar10", "data_dir": str(tmp_path / "data"), "manual_dir": str(manual),
                        "download": False})
    assert ds.image_shape == (32, 32, 3)
    assert {s: ds.size(s) for s in ds.images} == {"train": 8, "inner_valid": 1, "outer_valid": 1, "test": 4}
    assert_splits(ds, *expected_cifar(0, 10), *expected_cifar(100, CIFAR_TEST_COUNT))
    task = build_task({"name": "conv", "dataset": {"name": "cifar10", "data_dir": str(tmp_path / "data"),
                                                   "download": False}, "batch_size": 4})
    assert sum(x.size for x in jax.tree.leaves(task.init(jax.random.key(0)))) == 56_970


def _forbid_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the download manager must not be called")

    monkeypatch.setattr(tfds.download.DownloadManager, "download", refuse)
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", refuse)


def test_missing_data_with_downloads_off_fails_at_once_with_where_to_put_files(tmp_path, monkeypatch):
    _forbid_downloads(monkeypatch)
    with pytest.raises(DatasetUnavailableError) as err:
        build_dataset({"name": "fashion_mnist", "data_dir": str(tmp_path), "download": False})
    message = str(err.value)
    assert "'fashion_mnist' is not prepared" in message and "downloads are off" in message
    assert str(tmp_path / "downloads" / "manual" / "lofw_fashion_mnist") in message
    assert "train-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert isinstance(err.value, lofw.LofwError)
    assert not (tmp_path / "lofw_fashion_mnist" / "1.0.0").exists()


def test_missing_data_with_an_unreachable_host_fails_before_any_download(tmp_path, monkeypatch):
    _forbid_downloads(monkeypatch)
    closed_port = dataclasses.replace(sources.SOURCES["cifar10"], base_url="http://127.0.0.1:9/")
    monkeypatch.setitem(sources.SOURCES, "cifar10", closed_port)
    monkeypatch.setitem(tfds_datasets.SOURCES, "cifar10", closed_port)
    with pytest.raises(DatasetUnavailableError, match=r"127\.0\.0\.1:9 is unreachable.*cifar-10-binary\.tar\.gz"):
        build_dataset({"name": "cifar10", "data_dir": str(tmp_path)})


def test_partial_manual_folder_counts_as_missing(tmp_path):
    manual = tmp_path / "downloads" / "manual" / "lofw_mnist"
    write_idx_release(manual, n_train=5, n_test=2, compress=True)
    (manual / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetUnavailableError, match="not in the manual folder"):
        build_dataset({"name": "mnist", "data_dir": str(tmp_path), "download": False})


def test_corrupt_files_are_reported_with_their_role():
    good = idx_bytes(range(12), (3, 2, 2))
    np.testing.assert_array_equal(raw_formats.parse_idx(gzip.compress(good)), np.arange(12).reshape(3, 2, 2))
    with pytest.raises(raw_formats.RawFormatError, match="mnist train images: IDX header says shape"):
        raw_formats.parse_idx(good[:-1], "mnist train images")
    with pytest.raises(raw_formats.RawFormatError, match="bad magic"):
        raw_formats.parse_idx(b"\x01\x02\x08\x01", "x")
    with pytest.raises(raw_formats.RawFormatError, match="do not match labels"):
        raw_formats.parse_idx_pair(good, idx_bytes([1, 2], (2,)), "mnist train")
    with pytest.raises(raw_formats.RawFormatError, match="3073-byte records"):
        raw_formats.parse_cifar10(b"\x00" * 3074)


def test_importing_lofw_does_not_import_tensorflow_datasets():
    code = ("import sys, lofw; lofw.components('dataset'); lofw.build_task('digits_mlp'); "
            "sys.exit(int('tensorflow_datasets' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], timeout=300).returncode == 0


@pytest.fixture
def local_http_server(tmp_path):
    """Serve ``tmp_path / "www"`` on localhost (stands in for the download host)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_manager_fetches_the_original_files(tmp_path, monkeypatch, local_http_server):
    from lofw_plugins.dataset.tfds_builders import LofwMnist

    root, url = local_http_server
    write_idx_release(root, n_train=12, n_test=4, compress=True)
    local = dataclasses.replace(sources.SOURCES["mnist"], base_url=url)
    monkeypatch.setitem(tfds_datasets.SOURCES, "mnist", local)
    monkeypatch.setattr(LofwMnist, "SOURCE", local)
    ds = build_dataset({"name": "mnist", "data_dir": str(tmp_path / "data")})
    assert_splits(ds, *expected_idx(0, 12), *expected_idx(1000, 4))
    assert list((tmp_path / "data" / "downloads").rglob("*train-images-idx3-ubyte*"))  # via the manager
