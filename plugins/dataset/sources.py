"""Where the original files of each tfds-backed dataset come from.

Each dataset names the files a user may put in its manual folder (for
offline machines) and the URLs tfds's download manager fetches otherwise.
Looking for the files is plain ``pathlib``: it runs before any download is
attempted, so a missing dataset fails at once with a useful message.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch.bin"
IMAGENET32_TRAIN_BATCHES = tuple(f"train_data_batch_{i}.npz" for i in range(1, 11))
IMAGENET32_VAL = "val_data.npz"
LM1B_ARCHIVE = "1-billion-word-language-modeling-benchmark-r13output.tar.gz"
LM1B_FOLDER = "1-billion-word-language-modeling-benchmark-r13output"
LM1B_TRAIN_FOLDER = "training-monolingual.tokenized.shuffled"
LM1B_HELDOUT_FOLDER = "heldout-monolingual.tokenized.shuffled"


def is_lm1b_shard(relative: str) -> bool:
    """Whether a ``/``-separated path names an LM1B train (``news.en-*``) or heldout shard."""
    parts = relative.split("/")
    if len(parts) < 2:
        return False
    folder, name = parts[-2], parts[-1]
    return (folder == LM1B_TRAIN_FOLDER and name.startswith("news.en-")) or (
        folder == LM1B_HELDOUT_FOLDER and name.startswith("news.en.heldout-")
    )


@dataclasses.dataclass(frozen=True)
class RawSource:
    """The original release of one dataset.

    Attributes:
        dataset: lofw's dataset name.
        builder: the tfds builder's registered name (``lofw_`` + dataset, so it
            never clashes with tfds's own builders).
        format: ``"idx"``, ``"cifar10"``, ``"imagenet32"`` or ``"lm1b"``.
        files: what a user puts in the manual folder.
        base_url: the download location of ``files`` (for a dataset that cannot
            be downloaded, the page where a user gets them).
        alternatives: other accepted manual-folder layouts, for the message.
        downloadable: whether the download manager can fetch ``files``
            (ImageNet needs a login, so ``imagenet32`` cannot).
    """

    dataset: str
    builder: str
    format: str
    files: tuple[str, ...]
    base_url: str
    alternatives: str = ""
    downloadable: bool = True

    @property
    def urls(self) -> dict[str, str]:
        """file name -> URL."""
        return {f: self.base_url + f for f in self.files}

    def find_in(self, folder: Path | None) -> dict[str, Path] | None:
        """The original files in ``folder``, or None if any is missing.

        IDX files may be gzip-compressed (``.gz``) or not. CIFAR-10 may be the
        archive, or its six ``.bin`` batches in ``folder`` or in
        ``folder/cifar-10-batches-bin``. ImageNet32's eleven ``.npz`` files may
        be in ``folder`` or in its sub-folders (as the two zips extract). LM1B
        may be the archive, or its extracted shards: the two
        ``*-monolingual.tokenized.shuffled`` folders in ``folder`` or in
        ``folder/1-billion-word-language-modeling-benchmark-r13output`` (keys
        are then the shards' paths below that root).
        """
        if folder is None or not Path(folder).is_dir():
            return None
        folder = Path(folder)
        if self.format == "imagenet32":
            found = {}
            for name in self.files:
                hit = next((p for p in (folder / name, *sorted(folder.glob(f"*/{name}"))) if p.is_file()), None)
                if hit is None:
                    return None
                found[name] = hit
            return found
        if self.format == "lm1b":
            if (folder / LM1B_ARCHIVE).is_file():
                return {LM1B_ARCHIVE: folder / LM1B_ARCHIVE}
            for root in (folder, folder / LM1B_FOLDER):
                shards = {f"{d}/{p.name}": p for d in (LM1B_TRAIN_FOLDER, LM1B_HELDOUT_FOLDER)
                          for p in sorted((root / d).glob("*")) if p.is_file() and is_lm1b_shard(f"{d}/{p.name}")}
                if any(k.startswith(LM1B_TRAIN_FOLDER) for k in shards) and any(
                    k.startswith(LM1B_HELDOUT_FOLDER) for k in shards
                ):
                    return shards
            return None
        if self.format == "idx":
            found = {}
            for name in self.files:
                options = [folder / name, folder / name.removesuffix(".gz")]
                hit = next((p for p in options if p.is_file()), None)
                if hit is None:
                    return None
                found[name] = hit
            return found
        if (folder / CIFAR10_ARCHIVE).is_file():
            return {CIFAR10_ARCHIVE: folder / CIFAR10_ARCHIVE}
        for d in (folder, folder / CIFAR10_FOLDER):
            names = (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH)
            if all((d / n).is_file() for n in names):
                return {n: d / n for n in names}
        return None


SOURCES: dict[str, RawSource] = {
    "mnist": RawSource(
        "mnist", "lofw_mnist", "idx", MNIST_FILES, "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "the same files without .gz",
    ),
    "fashion_mnist": RawSource(
        "fashion_mnist", "lofw_fashion_mnist", "idx", MNIST_FILES,
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", "the same files without .gz",
    ),
    "cifar10": RawSource(
        "cifar10", "lofw_cifar10", "cifar10", (CIFAR10_ARCHIVE,), "https://www.cs.toronto.edu/~kriz/",
        f"or its extracted {CIFAR10_FOLDER}/ folder (data_batch_1..5.bin, test_batch.bin)",
    ),
    "imagenet32": RawSource(
        "imagenet32", "lofw_imagenet32", "imagenet32", (*IMAGENET32_TRAIN_BATCHES, IMAGENET32_VAL),
        "https://image-net.org/download-images.php",
        "Downsampled ImageNet 32x32, npz format, extracted from Imagenet32_train_npz.zip and "
        "Imagenet32_val_npz.zip; in the folder or one sub-folder down",
        downloadable=False,
    ),
    "lm1b": RawSource(
        "lm1b", "lofw_lm1b", "lm1b", (LM1B_ARCHIVE,), "http://www.statmt.org/lm-benchmark/",
        f"or its extracted {LM1B_FOLDER}/ folder with {LM1B_TRAIN_FOLDER}/news.en-* "
        f"and {LM1B_HELDOUT_FOLDER}/news.en.heldout-*",
    ),
}
