"""lofw's own tensorflow-datasets builders for MNIST, Fashion-MNIST and CIFAR-10.

tfds's stock builders need TensorFlow to prepare; these do not. Each one
takes the original files from its manual folder or fetches them with the
download manager, parses them with numpy (:mod:`raw_formats`), and stores
``uint8`` images and integer labels as ``array_record``, read back with
``tfds.data_source``. Example order is the files' order (shuffling is
disabled), so the 80/10/10 cut of the train split is the same everywhere.

Importing this module imports ``tensorflow_datasets`` (the ``datasets``
extra); the rest of lofw imports it only when such a dataset is built.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from lofw_plugins.data.raw_formats import parse_cifar10, parse_idx_pair
from lofw_plugins.data.sources import CIFAR10_ARCHIVE, CIFAR10_TEST_BATCH, CIFAR10_TRAIN_BATCHES, SOURCES, RawSource

Arrays = tuple[np.ndarray, np.ndarray]


class _RawImageBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared body of the builders; subclasses set ``SOURCE`` and ``IMAGE_SHAPE``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Parsed from the original files with numpy, stored as array_record."}
    SOURCE: RawSource
    IMAGE_SHAPE: tuple[int, int, int]
    NUM_CLASSES = 10

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{self.SOURCE.dataset} from its original files, parsed by lofw without TensorFlow.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=self.IMAGE_SHAPE, dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=self.NUM_CLASSES),
            }),
            supervised_keys=("image", "label"),
            homepage=self.SOURCE.base_url,
            disable_shuffling=True,
        )

    def _raw_files(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Path]:
        """The manual folder's files if all are there, else downloads."""
        try:
            manual = Path(dl_manager.manual_dir)
        except (AssertionError, ValueError):  # tfds raises these for a missing / empty folder
            manual = None
        found = self.SOURCE.find_in(manual)
        if found is not None:
            return found
        return {name: Path(p) for name, p in dl_manager.download(self.SOURCE.urls).items()}

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        train, test = self._parse(self._raw_files(dl_manager))
        return {"train": self._generate_examples(*train), "test": self._generate_examples(*test)}

    def _parse(self, files: dict[str, Path]) -> tuple[Arrays, Arrays]:
        raise NotImplementedError

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        for i in range(len(images)):
            yield i, {"image": images[i], "label": int(labels[i])}


class _IdxBuilder(_RawImageBuilder, skip_registration=True):
    IMAGE_SHAPE = (28, 28, 1)

    def _parse(self, files: dict[str, Path]) -> tuple[Arrays, Arrays]:
        read = {name: Path(p).read_bytes() for name, p in files.items()}
        f = self.SOURCE.files
        what = self.SOURCE.dataset
        return (
            parse_idx_pair(read[f[0]], read[f[1]], f"{what} train"),
            parse_idx_pair(read[f[2]], read[f[3]], f"{what} test"),
        )


class LofwMnist(_IdxBuilder):
    """MNIST (LeCun, Cortes and Burges): 28x28 grey digits, 10 classes."""

    SOURCE = SOURCES["mnist"]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Put {', '.join(SOURCE.files)} (from {SOURCE.base_url}) here."


class LofwFashionMnist(_IdxBuilder):
    """Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 28x28 grey clothing images, 10 classes."""

    SOURCE = SOURCES["fashion_mnist"]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Put {', '.join(SOURCE.files)} (from {SOURCE.base_url}) here."


class LofwCifar10(_RawImageBuilder):
    """CIFAR-10 (Krizhevsky 2009), binary release: 32x32 colour images, 10 classes."""

    SOURCE = SOURCES["cifar10"]
    IMAGE_SHAPE = (32, 32, 3)
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Put {CIFAR10_ARCHIVE} (from {SOURCE.base_url}) here."

    def _parse(self, files: dict[str, Path]) -> tuple[Arrays, Arrays]:
        names = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
        if CIFAR10_ARCHIVE in files:
            read = _read_tar_members(files[CIFAR10_ARCHIVE], names)
            missing = [n for n in names if n not in read]
            if missing:
                raise ValueError(f"{files[CIFAR10_ARCHIVE]}: the archive lacks {', '.join(missing)}")
        else:
            read = {n: Path(files[n]).read_bytes() for n in names}
        train = [parse_cifar10(read[n], f"cifar10 {n}") for n in CIFAR10_TRAIN_BATCHES]
        train_images = np.concatenate([x for x, _ in train])
        train_labels = np.concatenate([y for _, y in train])
        return (train_images, train_labels), parse_cifar10(read[CIFAR10_TEST_BATCH], f"cifar10 {CIFAR10_TEST_BATCH}")


def _read_tar_members(path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """Bytes of the regular members of a tar archive whose base name is in ``names``.

    Read in memory with ``tarfile`` (``dl_manager.iter_archive`` needs
    TensorFlow); nothing is extracted to disk.
    """
    read = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and base in names:
                read[base] = tar.extractfile(member).read()
    return read


BUILDERS: dict[str, type[_RawImageBuilder]] = {
    "mnist": LofwMnist,
    "fashion_mnist": LofwFashionMnist,
    "cifar10": LofwCifar10,
}
