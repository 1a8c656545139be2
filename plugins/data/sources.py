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


@dataclasses.dataclass(frozen=True)
class RawSource:
    """The original release of one dataset.

    Attributes:
        dataset: lofw's dataset name.
        builder: the tfds builder's registered name (``lofw_`` + dataset, so it
            never clashes with tfds's own builders).
        format: ``"idx"`` or ``"cifar10"``.
        files: what a user puts in the manual folder.
        base_url: the download location of ``files``.
        alternatives: other accepted manual-folder layouts, for the message.
    """

    dataset: str
    builder: str
    format: str
    files: tuple[str, ...]
    base_url: str
    alternatives: str = ""

    @property
    def urls(self) -> dict[str, str]:
        """file name -> URL."""
        return {f: self.base_url + f for f in self.files}

    def find_in(self, folder: Path | None) -> dict[str, Path] | None:
        """The original files in ``folder``, or None if any is missing.

        IDX files may be gzip-compressed (``.gz``) or not. CIFAR-10 may be the
        archive, or its six ``.bin`` batches in ``folder`` or in
        ``folder/cifar-10-batches-bin``.
        """
        if folder is None or not Path(folder).is_dir():
            return None
        folder = Path(folder)
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
}
