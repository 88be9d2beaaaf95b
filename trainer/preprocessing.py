"""Transform's preprocessing_fn: raw bytes -> float32 pixels in [-1, 1]."""

from __future__ import annotations

import tensorflow as tf

from dcgan_common import features
from dcgan_common.images import scale_pixels


def preprocessing_fn(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Decodes `image` ([batch, 1] bytes) and passes `label` ([batch, 1]) through."""
    raw = tf.io.decode_raw(tf.squeeze(inputs[features.IMAGE_KEY], axis=1), tf.uint8)
    pixels = tf.reshape(raw, [-1, features.IMAGE_PIXELS])
    return {
        features.IMAGE_XF: scale_pixels(pixels),
        features.LABEL_XF: tf.squeeze(inputs[features.LABEL_KEY], axis=1),
    }
