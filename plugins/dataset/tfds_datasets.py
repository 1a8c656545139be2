"""The ``mnist``, ``fashion_mnist``, ``cifar10`` and ``imagenet32`` datasets, through lofw's tfds builders.

Where the data lives: the tfds data folder is ``data_dir`` if given, else
``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``. A prepared dataset sits in
``<data folder>/lofw_<name>/1.0.0``. To prepare it, the original files are
taken from the manual folder ``<data folder>/downloads/manual/lofw_<name>/``
(or ``manual_dir``) when all are there, else fetched by tfds's download
manager. When neither works, construction fails at once (no retry loop) with
:class:`DatasetUnavailableError` naming the files and where to put them.

Splits: ``train`` / ``inner_valid`` / ``outer_valid`` are the first 80%, the
next 10% and the last 10% of the original train set in file order; ``test``
is the original test set (ImageNet32: ``val_data``). Pixels are stored as
``uint8`` and divided by 255 per batch. ImageNet32 cannot be downloaded
(image-net.org needs a login): without its files in the manual folder it
fails at once, whatever ``download`` says.
"""

from __future__ import annotations

import functools
import os
import socket
import urllib.parse
from pathlib import Path
from typing import ClassVar

import numpy as np
from jaxtyping import Array, Int, UInt8

from lofw import LofwError
from lofw_plugins.dataset.image_dataset import AbstractImageDataset, split_train, to_device
from lofw_plugins.dataset.sources import SOURCES, RawSource

#: Seconds to wait when checking that a download host answers at all.
REACHABILITY_TIMEOUT_S = 5.0


class DatasetUnavailableError(LofwError, FileNotFoundError):
    """A dataset is neither prepared, nor in its manual folder, nor downloadable."""


def data_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets`` (read at call time)."""
    chosen = data_dir or os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets"
    return Path(chosen).expanduser().resolve()


def manual_folder(source: RawSource, data_dir: Path) -> Path:
    """The default manual folder of one dataset: ``<data_dir>/downloads/manual/lofw_<name>``.

    It is per dataset because MNIST and Fashion-MNIST files share their names.
    """
    return data_dir / "downloads" / "manual" / source.builder


def unreachable(url: str, timeout: float = REACHABILITY_TIMEOUT_S) -> str | None:
    """Why ``url``'s host cannot be reached (one TCP connect), or None if it answers."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as e:
        return f"{parts.hostname}:{port} is unreachable ({e.strerror or e})"
    return None


def unavailable_message(source: RawSource, data_dir: Path, manual: Path, reason: str) -> str:
    """One message: what is missing, why it was not fetched, where to put the files."""
    files = ", ".join(source.files)
    alt = f" ({source.alternatives})" if source.alternatives else ""
    return (
        f"dataset {source.dataset!r} is not prepared in {data_dir / source.builder} and {reason}. "
        f"Put {files}{alt} from {source.base_url} into {manual} "
        f"(or pass manual_dir=...), or point data_dir / TFDS_DATA_DIR at a folder where it is prepared."
    )


def import_builders():
    """The module of lofw's tfds builders; a LofwError naming the extra to install when it is missing."""
    try:
        from lofw_plugins.dataset import tfds_builders  # needs the optional lofw[datasets] extra
    except ImportError as e:
        raise LofwError(
            f"the tfds datasets need tensorflow-datasets, importlib_resources, pillow and array_record: "
            f"pip install 'lofw[datasets]' ({e})"
        ) from None
    return tfds_builders


def prepare_source(source: RawSource, data_dir: Path, manual: Path, download: bool) -> None:
    """Build ``source``'s tfds dataset in ``data_dir`` from the files in ``manual`` (or downloaded)."""
    import tensorflow_datasets as tfds  # an optional extra (lofw[datasets]), heavy to import

    builder = import_builders().BUILDERS[source.dataset](data_dir=str(data_dir), file_format="array_record")
    if builder.is_prepared():
        return
    from_manual = source.find_in(manual) is not None
    if not from_manual:
        if not source.downloadable:
            raise DatasetUnavailableError(
                unavailable_message(
                    source, data_dir, manual,
                    f"its files are not in the manual folder (they cannot be downloaded automatically: "
                    f"get them by hand from {source.base_url})",
                )
            )
        if not download:
            raise DatasetUnavailableError(
                unavailable_message(source, data_dir, manual, "its files are not in the manual folder (downloads are off)")
            )
        reason = unreachable(next(iter(source.urls.values())))
        if reason is not None:
            raise DatasetUnavailableError(
                unavailable_message(source, data_dir, manual, f"its files are not in the manual folder; {reason}")
            )
    config = tfds.download.DownloadConfig(manual_dir=str(manual), try_download_gcs=False)
    try:
        builder.download_and_prepare(download_config=config)
    except Exception as e:  # noqa: BLE001 - any download failure becomes one message
        if from_manual:
            raise
        raise DatasetUnavailableError(
            unavailable_message(source, data_dir, manual, f"downloading failed ({type(e).__name__}: {e})")
        ) from None


def _read_split(source) -> tuple[np.ndarray, np.ndarray]:
    examples = source.__getitems__(list(range(len(source))))
    images = np.stack([ex["image"] for ex in examples]).astype(np.uint8)
    labels = np.asarray([ex["label"] for ex in examples], np.int64)
    return images, labels


@functools.lru_cache(maxsize=4)
def _load(dataset: str, data_dir: Path, manual: Path, download: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import tensorflow_datasets as tfds  # an optional extra (lofw[datasets]), heavy to import

    source = SOURCES[dataset]
    prepare_source(source, data_dir, manual, download)
    stored = tfds.data_source(source.builder, data_dir=str(data_dir), download=False)
    splits = split_train(*_read_split(stored["train"]))
    splits["test"] = _read_split(stored["test"])
    return splits


def load_tfds_splits(
    dataset: str, data_dir: str | None = None, manual_dir: str | None = None, download: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The four splits of ``dataset`` as numpy arrays, preparing it first if needed.

    Cached per process: building a second task on the same data reads nothing.
    """
    import_builders()
    root = data_folder(data_dir)
    manual = Path(manual_dir).expanduser().resolve() if manual_dir else manual_folder(SOURCES[dataset], root)
    return _load(dataset, root, manual, bool(download))


class AbstractTFDSImageDataset(AbstractImageDataset):
    """An image dataset read through lofw's tfds builder named ``source``.

    Args:
        data_dir: the tfds data folder (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        manual_dir: where the original files are (default ``<data_dir>/downloads/manual/lofw_<source>``).
        download: fetch the files when they are not there.
    """

    images: dict[str, UInt8[Array, "n h w c"]]
    labels: dict[str, Int[Array, " n"]]
    max_value: ClassVar[float] = 255.0
    num_classes: ClassVar[int] = 10
    source: ClassVar[str]

    def __init__(self, data_dir: str | None = None, manual_dir: str | None = None, download: bool = True):
        splits = load_tfds_splits(self.source, data_dir, manual_dir, download)
        self.images, self.labels = to_device(splits, self.source)


class MNIST(AbstractTFDSImageDataset):
    """MNIST digits, ``[28, 28, 1]``, pixels / 255, 10 classes (see the module docs)."""

    source: ClassVar[str] = "mnist"


class FashionMNIST(AbstractTFDSImageDataset):
    """Fashion-MNIST, ``[28, 28, 1]``, pixels / 255, 10 classes (see the module docs)."""

    source: ClassVar[str] = "fashion_mnist"


class CIFAR10(AbstractTFDSImageDataset):
    """CIFAR-10 (binary release), ``[32, 32, 3]``, pixels / 255, 10 classes (see the module docs)."""

    source: ClassVar[str] = "cifar10"


class ImageNet32(AbstractTFDSImageDataset):
    """Downsampled ImageNet, ``[32, 32, 3]``, pixels / 255, 1000 classes (see the module docs)."""

    num_classes: ClassVar[int] = 1000
    source: ClassVar[str] = "imagenet32"
