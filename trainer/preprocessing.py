"""Transform's preprocessing_fn: raw bytes -> float32 pixels in [-1, 1]."""

from __future__ import annotations

import tensorflow as tf

from trainer import features


def scale_pixels(pixels: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]; 0 -> -1.0 and 255 -> 1.0 exactly."""
    return tf.cast(pixels, tf.float32) / features.PIXEL_HALF_RANGE - 1.0


def preprocessing_fn(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Decodes `image` ([batch, 1] bytes) and passes `label` ([batch, 1]) through."""
    raw = tf.io.decode_raw(tf.squeeze(inputs[features.IMAGE_KEY], axis=1), tf.uint8)
    pixels = tf.reshape(raw, [-1, features.IMAGE_PIXELS])
    return {
        features.IMAGE_XF: scale_pixels(pixels),
        features.LABEL_XF: tf.squeeze(inputs[features.LABEL_KEY], axis=1),
    }
