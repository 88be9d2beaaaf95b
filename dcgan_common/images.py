"""Pixel conversions both ways and sample grids (the specification's tiled `save_images`)."""

from __future__ import annotations

import math

import tensorflow as tf

from dcgan_common import features


def scale_pixels(pixels: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]; 0 -> -1.0 and 255 -> 1.0 exactly (Transform's
    scaling, also applied to generated samples before they are scored)."""
    return tf.cast(pixels, tf.float32) / features.PIXEL_HALF_RANGE - 1.0


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """[-1, 1] floats -> uint8 [0, 255]: the inverse of Transform's scaling."""
    pixels = tf.round((tf.cast(images, tf.float32) + 1.0) * features.PIXEL_HALF_RANGE)
    return tf.cast(tf.clip_by_value(pixels, 0.0, 255.0), tf.uint8)


def tile(images: tf.Tensor, columns: int | None = None) -> tf.Tensor:
    """uint8 [N, H, W, C] -> one [rows*H, columns*W, C] grid, row-major, blank-padded."""
    count = int(images.shape[0])
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    _, height, width, channels = images.shape
    padding = tf.zeros([rows * columns - count, height, width, channels], images.dtype)
    grid = tf.reshape(tf.concat([images, padding], 0), [rows, columns, height, width, channels])
    grid = tf.transpose(grid, [0, 2, 1, 3, 4])
    return tf.reshape(grid, [rows * height, columns * width, channels])


def write_png(image: tf.Tensor, path: str) -> None:
    """Writes a uint8 [H, W, C] image; the directory is created if needed."""
    tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
    tf.io.write_file(path, tf.io.encode_png(image))
