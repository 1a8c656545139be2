"""lofw's own tensorflow-datasets builders: MNIST, Fashion-MNIST, CIFAR-10, ImageNet32, LM1B.

tfds's stock builders need TensorFlow to prepare; these do not. Each one
takes the original files from its manual folder or fetches them with the
download manager, parses them with numpy (:mod:`raw_formats`), and stores
``uint8`` images and integer labels (or, for LM1B, the raw bytes of each
text shard as one example) as ``array_record``, read back with
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

from lofw_plugins.dataset.raw_formats import parse_cifar10, parse_idx_pair, parse_imagenet32_npz
from lofw_plugins.dataset.sources import (
    CIFAR10_ARCHIVE,
    CIFAR10_TEST_BATCH,
    CIFAR10_TRAIN_BATCHES,
    IMAGENET32_TRAIN_BATCHES,
    IMAGENET32_VAL,
    LM1B_ARCHIVE,
    LM1B_HELDOUT_FOLDER,
    LM1B_TRAIN_FOLDER,
    SOURCES,
    RawSource,
    is_lm1b_shard,
)

Arrays = tuple[np.ndarray, np.ndarray]


class _RawBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Finds a ``SOURCE``'s original files: the manual folder, else the download manager."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Parsed from the original files with numpy, stored as array_record."}
    SOURCE: RawSource

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


class _RawImageBuilder(_RawBuilder, skip_registration=True):
    """Shared body of the image builders; subclasses set ``SOURCE`` and ``IMAGE_SHAPE``."""

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


class LofwImagenet32(_RawImageBuilder):
    """Downsampled ImageNet 32x32 (Chrabaszcz et al. 2017), npz release: 1000 classes.

    ``train`` is ``train_data_batch_1..10`` in that order, ``test`` is ``val_data``;
    labels are stored 0-based.
    """

    SOURCE = SOURCES["imagenet32"]
    IMAGE_SHAPE = (32, 32, 3)
    NUM_CLASSES = 1000
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Log in at {SOURCE.base_url}, get Imagenet32_train_npz.zip and Imagenet32_val_npz.zip, "
        f"and extract {', '.join(SOURCE.files)} here."
    )

    def _parse(self, files: dict[str, Path]) -> tuple[Arrays, Arrays]:
        train = [parse_imagenet32_npz(Path(files[n]).read_bytes(), f"imagenet32 {n}") for n in IMAGENET32_TRAIN_BATCHES]
        test = parse_imagenet32_npz(Path(files[IMAGENET32_VAL]).read_bytes(), f"imagenet32 {IMAGENET32_VAL}")
        return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])), test


class LofwLm1b(_RawBuilder):
    """The One Billion Word benchmark (Chelba et al. 2013) as raw bytes.

    One example per shard file, ``{"bytes": uint8 [n]}`` (the file's bytes
    unchanged: sentences, one per line, UTF-8), keyed and ordered by the
    shard's path. ``train`` holds ``training-monolingual.tokenized.shuffled/news.en-*``,
    ``test`` holds ``heldout-monolingual.tokenized.shuffled/news.en.heldout-*``
    (as tfds's own ``lm1b``).
    """

    SOURCE = SOURCES["lm1b"]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Put {LM1B_ARCHIVE} (from {SOURCE.base_url}) or its extracted folder here."

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="LM1B shards as raw bytes, read by lofw without TensorFlow.",
            features=tfds.features.FeaturesDict({
                "bytes": tfds.features.Tensor(shape=(None,), dtype=np.uint8, encoding=tfds.features.Encoding.BYTES),
            }),
            homepage=self.SOURCE.base_url,
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        files = self._raw_files(dl_manager)
        return {
            "train": self._generate_examples(files, LM1B_TRAIN_FOLDER),
            "test": self._generate_examples(files, LM1B_HELDOUT_FOLDER),
        }

    def _generate_examples(self, files: dict[str, Path], folder: str):
        """One shard at a time (the full corpus is about 4 GB), in order of path."""
        if LM1B_ARCHIVE in files:
            with tarfile.open(files[LM1B_ARCHIVE], "r:*") as tar:
                members = sorted(
                    (m for m in tar.getmembers() if m.isfile() and is_lm1b_shard(m.name)), key=lambda m: m.name
                )
                shards = [m for m in members if m.name.split("/")[-2] == folder]
                if not shards:
                    raise ValueError(f"{files[LM1B_ARCHIVE]}: the archive holds no {folder}/ shards")
                for m in shards:
                    key = "/".join(m.name.split("/")[-2:])
                    yield key, {"bytes": np.frombuffer(tar.extractfile(m).read(), np.uint8)}
            return
        for key in sorted(k for k in files if k.startswith(folder + "/")):
            yield key, {"bytes": np.frombuffer(Path(files[key]).read_bytes(), np.uint8)}


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


BUILDERS: dict[str, type[_RawBuilder]] = {
    "mnist": LofwMnist,
    "fashion_mnist": LofwFashionMnist,
    "cifar10": LofwCifar10,
    "imagenet32": LofwImagenet32,
    "lm1b": LofwLm1b,
}
