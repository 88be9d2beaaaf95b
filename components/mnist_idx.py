"""Reads and validates the four canonical MNIST IDX files.

Everything is read and checked before anything is written, so that a bad
file can never leave a half-written Examples artifact behind.
"""

from __future__ import annotations

import gzip
import io
import struct
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from dcgan_common.features import NUM_CLASSES

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
IMAGE_ROWS = 28
IMAGE_COLS = 28

# Split name -> file stem of the canonical distribution.
SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "eval": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class MnistDataError(ValueError):
    """A source file is missing or malformed; the message names the file."""


class MnistSplit(NamedTuple):
    images: np.ndarray  # uint8 [n, 28, 28] (digits), or [n, 28, 28, channels] once stacked
    labels: np.ndarray  # int64 [n]


def find_idx_file(directory: str, stem: str) -> str:
    """Returns the path of `stem` or `stem.gz` in `directory`."""
    for name in (stem, stem + ".gz"):
        path = f"{directory.rstrip('/')}/{name}"
        if tf.io.gfile.exists(path):
            return path
    raise MnistDataError(
        f"{directory.rstrip('/')}/{stem}[.gz]: missing file (expected one of "
        f"{stem}, {stem}.gz in {directory})")


def _read_bytes(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as raw:
        data = raw.read()
    if path.endswith(".gz"):
        try:
            return gzip.GzipFile(fileobj=io.BytesIO(data)).read()
        except (EOFError, OSError, gzip.BadGzipFile) as err:
            raise MnistDataError(f"{path}: truncated or corrupt gzip data ({err})") from err
    return data


def _parse(path: str, magic: int, ndims: int) -> tuple[tuple[int, ...], np.ndarray]:
    data = _read_bytes(path)
    header_size = 4 * (1 + ndims)
    if len(data) < header_size:
        raise MnistDataError(
            f"{path}: truncated header ({len(data)} bytes, need {header_size})")
    found_magic = struct.unpack(">i", data[:4])[0]
    if found_magic != magic:
        raise MnistDataError(
            f"{path}: wrong magic number 0x{found_magic:08x}, expected 0x{magic:08x}")
    dims = struct.unpack(f">{ndims}i", data[4:header_size])
    expected = int(np.prod(dims))
    payload = len(data) - header_size
    if payload < expected:
        raise MnistDataError(
            f"{path}: truncated data: header says {dims} ({expected} bytes), "
            f"file holds {payload}")
    if payload > expected:
        raise MnistDataError(
            f"{path}: {payload - expected} unexpected trailing bytes after {dims}")
    return dims, np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def read_images(path: str) -> np.ndarray:
    """uint8 [n, 28, 28] from an IDX3 image file."""
    dims, images = _parse(path, IMAGE_MAGIC, 3)
    if dims[1:] != (IMAGE_ROWS, IMAGE_COLS):
        raise MnistDataError(
            f"{path}: wrong image dimensions {dims[1]}x{dims[2]}, "
            f"expected {IMAGE_ROWS}x{IMAGE_COLS}")
    return images


def read_labels(path: str) -> np.ndarray:
    """int64 [n] from an IDX1 label file, every label in 0-9."""
    _, labels = _parse(path, LABEL_MAGIC, 1)
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise MnistDataError(
            f"{path}: label {int(labels[bad[0]])} at index {int(bad[0])} is outside 0-9 "
            f"({bad.size} such labels)")
    return labels.astype(np.int64)


def check_split(images: np.ndarray, labels: np.ndarray, source: str) -> MnistSplit:
    """The checks every source passes (IDX files, tensorflow-datasets): uint8 [n, 28, 28]
    images, as many int64 labels in 0-9, n > 0. `source` names the data in errors."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_ROWS, IMAGE_COLS):
        raise MnistDataError(f"{source}: images have shape {images.shape}, expected "
                             f"[n, {IMAGE_ROWS}, {IMAGE_COLS}]")
    if images.dtype != np.uint8:
        raise MnistDataError(f"{source}: images are {images.dtype}, expected uint8")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise MnistDataError(f"{source}: labels have shape {labels.shape} and dtype "
                             f"{labels.dtype}, expected integers [n]")
    if len(images) != len(labels):
        raise MnistDataError(f"{source}: image/label count mismatch: {len(images)} images but "
                             f"{len(labels)} labels")
    if not len(images):
        raise MnistDataError(f"{source}: no examples")
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        raise MnistDataError(f"{source}: label {int(labels[bad[0]])} at index {int(bad[0])} "
                             f"is outside 0-9 ({bad.size} such labels)")
    return MnistSplit(images, labels.astype(np.int64))


def load_split(directory: str, split: str) -> MnistSplit:
    """Reads and cross-checks the image and label files of one split."""
    images_stem, labels_stem = SPLIT_FILES[split]
    images_path = find_idx_file(directory, images_stem)
    labels_path = find_idx_file(directory, labels_stem)
    return check_split(read_images(images_path), read_labels(labels_path),
                       f"{images_path} + {labels_path}")


def encode_idx(array: np.ndarray, magic: int) -> bytes:
    """IDX bytes for a uint8 array: the inverse of the readers (used to cut slices)."""
    header = struct.pack(f">i{array.ndim}i", magic, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
