"""Transform's preprocessing_fn: raw bytes -> float32 pixels in [-1, 1]."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from dcgan_common import features
from dcgan_common.config import TRANSFORM_CHANNELS_KEY
from dcgan_common.images import scale_pixels


def preprocessing_fn(inputs: dict[str, tf.Tensor],
                     custom_config: dict[str, Any] | None = None) -> dict[str, tf.Tensor]:
    """Decodes `image` ([batch, 1] bytes, 28x28 pixels times the channels create_pipeline
    passes in custom_config) and passes `label` ([batch, 1]) through."""
    channels = (custom_config or {}).get(TRANSFORM_CHANNELS_KEY, 1)
    raw = tf.io.decode_raw(tf.squeeze(inputs[features.IMAGE_KEY], axis=1), tf.uint8)
    pixels = tf.reshape(raw, [-1, features.IMAGE_PIXELS * channels])
    return {
        features.IMAGE_XF: scale_pixels(pixels),
        features.LABEL_XF: tf.squeeze(inputs[features.LABEL_KEY], axis=1),
    }
