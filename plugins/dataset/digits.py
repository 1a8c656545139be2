"""The ``digits`` dataset: scikit-learn's bundled 8x8 handwritten digits.

1797 grey images with pixel values 0..16 (the UCI "optdigits" test set,
shipped inside scikit-learn's wheel, so it needs no network). It is the
small embedded real dataset for the quickstart and the tests.

Splits: the data has no official test set, so the last 297 images (in file
order) are ``test`` and the first 1500 play the original train set, cut
80/10/10 as for every dataset (:func:`split_train`): ``train`` 1200,
``inner_valid`` 150, ``outer_valid`` 150. The file cycles through the ten
classes, so contiguous cuts are class-balanced (every class is 8.6% to
11.4% of every split).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from jaxtyping import Array, Int, UInt8

from lofw_plugins.dataset.image_dataset import AbstractImageDataset, split_train, to_device

#: Images (in file order) before this index form the original train set.
DIGITS_TRAIN_SIZE = 1500


def load_digits_numpy() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``uint8 [1797, 8, 8]`` (0..16) and ``int64 [1797]``."""
    from sklearn.datasets import load_digits  # scikit-learn (~1 s to import) only when the digits are loaded

    bunch = load_digits()
    return bunch.images.astype(np.uint8), bunch.target


class Digits(AbstractImageDataset):
    """scikit-learn's 8x8 digits, pixels / 16, images ``[8, 8, 1]``, 10 classes."""

    images: dict[str, UInt8[Array, "n 8 8 1"]]
    labels: dict[str, Int[Array, " n"]]
    max_value: ClassVar[float] = 16.0
    num_classes: ClassVar[int] = 10

    def __init__(self):
        images, labels = load_digits_numpy()
        splits = split_train(images[:DIGITS_TRAIN_SIZE], labels[:DIGITS_TRAIN_SIZE])
        splits["test"] = (images[DIGITS_TRAIN_SIZE:], labels[DIGITS_TRAIN_SIZE:])
        self.images, self.labels = to_device(splits, "digits")
