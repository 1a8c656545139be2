"""Parsers for the original image-dataset files, in numpy only.

IDX (MNIST, Fashion-MNIST; LeCun et al.), optionally gzip-compressed::

    bytes 0-1  zero
    byte  2    element type (0x08 = unsigned byte, the only one used here)
    byte  3    number of dimensions d
    4 d bytes  each dimension's size, big-endian uint32
    the data   row-major

CIFAR-10 binary release (``cifar-10-binary.tar.gz``): files of 3073-byte
records, ``[label, 1024 red, 1024 green, 1024 blue]`` with each plane a 32x32
image in row-major order. The number of records is the file size / 3073;
nothing here assumes the official counts. Downloaded pickles are never used.

Downsampled ImageNet 32x32 (Chrabaszcz, Loshchilov and Hutter 2017), npz
release: ``train_data_batch_1..10.npz`` and ``val_data.npz``, each with
``data`` (``uint8 [N, 3072]``: 1024 red, 1024 green, 1024 blue values, each
plane a 32x32 image in row-major order) and ``labels`` (``N`` integers, 1-based,
1..1000). Read with ``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import gzip
import io

import numpy as np

IDX_UBYTE = 0x08
CIFAR10_RECORD = 1 + 3 * 32 * 32
IMAGENET32_PIXELS = 3 * 32 * 32
IMAGENET_CLASSES = 1000


class RawFormatError(ValueError):
    """A file does not hold what its format promises."""


def maybe_gunzip(data: bytes) -> bytes:
    """Decompress gzip data (recognised by its magic bytes); pass anything else through."""
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def parse_idx(data: bytes, what: str = "IDX file") -> np.ndarray:
    """Parse an IDX file of unsigned bytes (gzip or plain) into a ``uint8`` array."""
    data = maybe_gunzip(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise RawFormatError(f"{what}: not an IDX file (bad magic number)")
    if data[2] != IDX_UBYTE:
        raise RawFormatError(f"{what}: IDX element type 0x{data[2]:02x}, expected unsigned bytes (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise RawFormatError(f"{what}: truncated IDX header")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    body = np.frombuffer(data, np.uint8, offset=header)
    if body.size != int(np.prod(shape)):
        raise RawFormatError(f"{what}: IDX header says shape {shape}, the file holds {body.size} bytes of data")
    return body.reshape(shape)


def parse_idx_pair(images: bytes, labels: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, H, W, 1]`` and labels ``int64 [N]`` from two IDX files."""
    x = parse_idx(images, f"{what} images")
    y = parse_idx(labels, f"{what} labels")
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise RawFormatError(f"{what}: images of shape {x.shape} do not match labels of shape {y.shape}")
    return x[..., None], y.astype(np.int64)


def parse_cifar10(data: bytes, what: str = "CIFAR-10 batch") -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, 32, 32, 3]`` and labels ``int64 [N]`` from one binary batch file."""
    if len(data) == 0 or len(data) % CIFAR10_RECORD:
        raise RawFormatError(f"{what}: {len(data)} bytes is not a whole number of {CIFAR10_RECORD}-byte records")
    records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR10_RECORD)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), records[:, 0].astype(np.int64)


def parse_imagenet32_npz(data: bytes, what: str = "ImageNet32 batch") -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, 32, 32, 3]`` and 0-based labels ``int64 [N]`` from one npz batch."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            x, y = np.asarray(npz["data"]), np.asarray(npz["labels"])
    except (OSError, ValueError, KeyError) as e:
        raise RawFormatError(f"{what}: not an npz file with arrays 'data' and 'labels' ({e})") from None
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != IMAGENET32_PIXELS:
        raise RawFormatError(f"{what}: 'data' is {x.dtype} {x.shape}, expected uint8 [N, {IMAGENET32_PIXELS}]")
    y = y.reshape(-1).astype(np.int64)
    if len(y) != len(x):
        raise RawFormatError(f"{what}: {len(x)} images but {len(y)} labels")
    if len(y) and (y.min() < 1 or y.max() > IMAGENET_CLASSES):
        raise RawFormatError(f"{what}: labels must be 1..{IMAGENET_CLASSES} (1-based), got {y.min()}..{y.max()}")
    images = x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), y - 1
