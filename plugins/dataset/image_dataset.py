"""Image-classification datasets held on device and sampled with JAX keys.

Every built-in dataset stores its four splits (``lofw.SPLITS``) as
device arrays: images as ``uint8`` (``[N, H, W, C]``), labels as ``int32``.
A batch is drawn inside the compiled inner loop by

    idx ~ Uniform{0, ..., N_split - 1}^B     (jax.random.randint, with replacement)
    batch = {"image": images[idx] / max_value,  "label": labels[idx]}

so pixels land in ``[0, 1]`` (``max_value`` is 255 for the tfds datasets, as
in the reference's ``preload_tfds_image_classification_datasets``, and 16 for
scikit-learn's digits). Sampling with replacement replaces the reference's
epoch-shuffled host iterator: no Python iterator runs in the hot loop, and
a batch is a pure function of its key.
"""

import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractClassVar, AbstractVar
from jaxtyping import Array, Int, PRNGKeyArray, UInt8

import lofw
from lofw import SPLITS, Batch, ConfigError, choices

#: Fractions of the original train set that form ``train`` / ``inner_valid`` /
#: ``outer_valid`` (the reference's ``train[0:80%]``, ``[80%:90%]``, ``[90%:]``).
TRAIN_FRACTIONS = (0.8, 0.9)


def split_train(images: np.ndarray, labels: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Cut an original train set into ``train`` / ``inner_valid`` / ``outer_valid``.

    The cuts are at ``floor(0.8 N)`` and ``floor(0.9 N)``, in the file's order
    (as tfds percent slicing of an unshuffled split does).
    """
    n = len(images)
    a, b = (int(n * f) for f in TRAIN_FRACTIONS)
    return {
        "train": (images[:a], labels[:a]),
        "inner_valid": (images[a:b], labels[a:b]),
        "outer_valid": (images[b:], labels[b:]),
    }


def to_device(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], name: str
) -> tuple[dict[str, Array], dict[str, Array]]:
    """Move ``{split: (images, labels)}`` numpy arrays to device.

    Images may be ``[N, H, W]`` (a channel axis is added) or ``[N, H, W, C]``;
    they are stored as ``uint8`` and labels as ``int32``.

    Returns:
        ``(images, labels)``, each a dict keyed by split name.
    """
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise ValueError(f"dataset {name!r} lacks split(s) {choices(missing)}")
    images, labels = {}, {}
    for split in SPLITS:
        x, y = np.asarray(splits[split][0]), np.asarray(splits[split][1])
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or y.shape != (len(x),):
            raise ValueError(
                f"dataset {name!r} split {split!r}: expected images [N, H, W, C] and N labels, "
                f"got shapes {x.shape} and {y.shape}"
            )
        if len(x) == 0:
            raise ValueError(f"dataset {name!r} split {split!r} is empty")
        images[split] = jnp.asarray(x.astype(np.uint8))
        labels[split] = jnp.asarray(y.astype(np.int32))
    return images, labels


class AbstractImageDataset(lofw.AbstractDataset):
    """Labelled images in the four splits of ``lofw.SPLITS``, on device.

    Final subclasses fill ``images`` / ``labels`` (use :func:`to_device`) and
    set the class constants.

    Attributes:
        images: split name -> ``uint8 [N, H, W, C]``.
        labels: split name -> ``int32 [N]``.
        max_value: the pixel value that maps to 1.0.
        num_classes: number of label values.
    """

    images: AbstractVar[dict[str, UInt8[Array, "n h w c"]]]
    labels: AbstractVar[dict[str, Int[Array, " n"]]]
    max_value: AbstractClassVar[float]
    num_classes: AbstractClassVar[int]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one image."""
        return tuple(self.images["train"].shape[1:])

    def size(self, split: str = "train") -> int:
        """Number of examples in ``split``."""
        return int(self.labels[_check_split(split)].shape[0])

    def sample(self, key: PRNGKeyArray, batch_size: int, split: str = "train") -> Batch:
        """Draw ``batch_size`` examples of ``split`` uniformly, with replacement.

        Returns:
            ``{"image": float32 [B, H, W, C] in [0, 1], "label": int32 [B]}``.
        """
        images = self.images[_check_split(split)]
        idx = jax.random.randint(key, (batch_size,), 0, images.shape[0])
        return {
            "image": images[idx].astype(jnp.float32) / self.max_value,
            "label": self.labels[split][idx],
        }


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid choices: {choices(SPLITS)}")
    return split
