"""Transform's preprocessing_fn on known pixels."""

import numpy as np
import tensorflow as tf

from dcgan_common import features
from dcgan_common.images import to_uint8
from trainer.preprocessing import preprocessing_fn


def run(pixels: np.ndarray, labels: list[int]) -> dict[str, np.ndarray]:
    images = tf.constant([[row.astype(np.uint8).tobytes()] for row in pixels])
    outputs = preprocessing_fn({features.IMAGE_KEY: images,
                                features.LABEL_KEY: tf.constant([[x] for x in labels], tf.int64)})
    return {k: v.numpy() for k, v in outputs.items()}


def test_scales_every_byte_value_to_minus_one_one():
    pixels = np.arange(784 * 2).reshape(2, 784) % 256
    out = run(pixels, [3, 9])
    xf = out[features.IMAGE_XF]
    assert xf.dtype == np.float32 and xf.shape == (2, 784)
    expected = pixels.astype(np.float64) / 127.5 - 1.0
    np.testing.assert_allclose(xf, expected, atol=1e-6)
    assert xf[0, 0] == -1.0 and xf[0, 255] == 1.0  # 0 -> -1 and 255 -> 1 exactly.
    np.testing.assert_array_equal(out[features.LABEL_XF], [3, 9])


def test_keeps_row_major_order():
    pixels = np.zeros((1, 784), np.uint8)
    pixels[0, 28 * 3 + 5] = 255  # Row 3, column 5.
    xf = run(pixels, [0])[features.IMAGE_XF].reshape(28, 28)
    assert xf[3, 5] == 1.0 and (xf == -1.0).sum() == 783


def test_export_scaling_inverts_the_transform():
    pixels = np.arange(256, dtype=np.uint8)
    scaled = tf.constant(pixels, tf.float32) / 127.5 - 1.0
    np.testing.assert_array_equal(to_uint8(scaled).numpy(), pixels)
